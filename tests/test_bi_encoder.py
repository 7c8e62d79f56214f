"""The bi-encoder re-ranker scores as sentence-transformers itself does, whatever the model's modules
(dense layers after pooling, concatenated poolings, prompts, a folder saved by the installed
sentence-transformers), and what is not a sentence-embedding model never scores with a random head."""

import numpy as np
import pytest
import torch

from pyterrier_mice import BiEncoderReranker, CrossEncoderReranker, load_reranker
from pyterrier_mice.models.bi_encoder import is_bi_encoder

st = pytest.importorskip("sentence_transformers")
import sentence_transformers.models  # noqa: E402,F401  (st.models)

QUERIES = ["what is the boundary layer of a wing", "shock wave in a tunnel", "x"]
DOCS = ["the boundary layer of a wing at high speed " * 3, "a wind tunnel with a shock", "hello world " * 200]


def _expected(model, queries, docs):
    """sentence-transformers' own score of each aligned pair."""
    q = model.encode_query(queries, convert_to_tensor=True)
    d = model.encode_document(docs, convert_to_tensor=True)
    return model.similarity_pairwise(q, d).numpy()


def _tiny(path, tokenizer, *modules_after, pooling="mean", prompts=None, default_prompt=None, max_seq_length=16):
    """A tiny BERT bi-encoder built and saved by sentence-transformers (its own layout)."""
    from conftest import bert_config
    from transformers import AutoModel

    torch.manual_seed(0)
    base = path.parent / (path.name + "-base")
    AutoModel.from_config(bert_config()).save_pretrained(base)
    tokenizer.save_pretrained(base)
    modules = [st.models.Transformer(str(base), max_seq_length=max_seq_length), st.models.Pooling(32, pooling)]
    model = st.SentenceTransformer(
        modules=modules + list(modules_after), device="cpu", prompts=prompts, default_prompt_name=default_prompt
    )
    model.save(str(path))
    return str(path)


@pytest.mark.minilm
def test_minilm_scores_are_sentence_transformers_cosines(minilm_path):
    rr = load_reranker(str(minilm_path))
    assert isinstance(rr, BiEncoderReranker) and rr.query_max_length == rr.doc_max_length == 256
    with pytest.warns(UserWarning, match="1 of 3 documents exceeded 256 tokens"):
        ours = rr.score_pairs(QUERIES, DOCS)
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    np.testing.assert_allclose(ours, _expected(model, QUERIES, DOCS), rtol=0, atol=2e-6)


@pytest.mark.minilm
def test_a_dense_module_after_pooling_is_run(minilm_path, tmp_path):
    """MiniLM with a 384→64 tanh ``2_Dense`` (the audit's case: the module was ignored)."""
    torch.manual_seed(0)
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    dense = st.SentenceTransformer(modules=[model[0], model[1], st.models.Dense(384, 64)], device="cpu")
    dense.save(str(tmp_path / "dense"))
    rr = BiEncoderReranker.from_pretrained(str(tmp_path / "dense"))
    expected = _expected(st.SentenceTransformer(str(tmp_path / "dense"), device="cpu"), QUERIES[:2], DOCS[:2])
    np.testing.assert_allclose(rr.score_pairs(QUERIES[:2], DOCS[:2]), expected, rtol=0, atol=2e-6)


@pytest.mark.minilm
def test_a_folder_saved_by_the_installed_sentence_transformers_loads(minilm_path, tmp_path):
    """``SentenceTransformer(...).save(folder)`` writes ``{"pooling_mode": "mean"}``: read as theirs."""
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    model.save(str(tmp_path / "saved"))
    rr = load_reranker(str(tmp_path / "saved"))
    assert isinstance(rr, BiEncoderReranker)
    np.testing.assert_allclose(
        rr.score_pairs(QUERIES[:2], DOCS[:2]), _expected(model, QUERIES[:2], DOCS[:2]), atol=2e-6
    )


@pytest.mark.parametrize(
    "pooling, after",
    [("mean", ()), ("cls", ()), ("max", ()), (("mean", "max", "cls"), ()), ("mean", ("dense",)), ("mean", ("norm",))],
)
def test_every_module_list_scores_as_sentence_transformers(pooling, after, tokenizer, tmp_path):
    width = 32 * (len(pooling) if isinstance(pooling, tuple) else 1)
    modules = [st.models.Dense(width, 8) if m == "dense" else st.models.Normalize() for m in after]
    path = _tiny(tmp_path / "st", tokenizer, *modules, pooling=pooling)
    assert is_bi_encoder(path) and not is_bi_encoder(str(tmp_path))
    rr = BiEncoderReranker.from_pretrained(path)
    with pytest.warns(UserWarning, match="truncated"):
        got = rr.score_pairs(QUERIES, DOCS)
    np.testing.assert_allclose(got, _expected(st.SentenceTransformer(path, device="cpu"), QUERIES, DOCS), atol=2e-6)


def test_prompts_are_the_models(tokenizer, tmp_path):
    """The query and document prompts, and a default prompt, as sentence-transformers applies them."""
    path = _tiny(tmp_path / "st", tokenizer, prompts={"query": "what is ", "document": "the "}, max_seq_length=64)
    rr = BiEncoderReranker.from_pretrained(path)
    model = st.SentenceTransformer(path, device="cpu")
    np.testing.assert_allclose(
        rr.score_pairs(QUERIES[:2], DOCS[:2]), _expected(model, QUERIES[:2], DOCS[:2]), atol=2e-6
    )
    unprompted = _tiny(tmp_path / "plain", tokenizer, max_seq_length=64)
    plain = BiEncoderReranker.from_pretrained(unprompted).score_pairs(QUERIES[:2], DOCS[:2])
    assert not np.allclose(plain, rr.score_pairs(QUERIES[:2], DOCS[:2]), atol=1e-4)  # the prompts were applied
    default = _tiny(tmp_path / "default", tokenizer, prompts={"q": "what is "}, default_prompt="q", max_seq_length=64)
    model = st.SentenceTransformer(default, device="cpu")
    np.testing.assert_allclose(
        BiEncoderReranker.from_pretrained(default).score_pairs(QUERIES[:2], DOCS[:2]),
        _expected(model, QUERIES[:2], DOCS[:2]),
        atol=2e-6,
    )


def test_a_base_encoder_never_scores_with_a_random_head(tokenizer, tmp_path):
    """A base encoder (no classification head, no sentence-transformers modules) is refused in one line
    by every path that could load it, instead of scoring with a randomly initialised head."""
    from conftest import bert_config
    from transformers import AutoModel

    AutoModel.from_config(bert_config()).save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    plain = str(tmp_path / "plain")
    for load in (load_reranker, CrossEncoderReranker.from_pretrained):
        with pytest.raises(ValueError, match="no classification head.*randomly initialised head") as err:
            load(plain)
        assert len(str(err.value).splitlines()) == 1
    with pytest.raises(ValueError, match="not a sentence-embedding model.*CrossEncoderReranker"):
        BiEncoderReranker.from_pretrained(plain)


def test_a_head_missing_from_the_weights_is_refused(tokenizer, tmp_path):
    """A checkpoint whose config declares a cross-encoder but whose weights lack the head."""
    from conftest import bert_config
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification

    path = tmp_path / "ce"
    AutoModelForSequenceClassification.from_config(bert_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    weights = load_file(str(path / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier")}, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="lack 2 tensor.*classifier.*at random"):
        CrossEncoderReranker.from_pretrained(str(path))


def test_inputs_of_a_bi_encoder_are_refused_as_the_others(tokenizer, tmp_path):
    rr = BiEncoderReranker.from_pretrained(_tiny(tmp_path / "st", tokenizer))
    with pytest.raises(TypeError, match="index"):
        BiEncoderReranker(rr.model, index="somewhere")
