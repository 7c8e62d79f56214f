"""The bi-encoder re-ranker: the cosine of sentence-transformers' own encoding, its layout read from
the folder, and its use as a teacher."""

import json

import numpy as np
import pytest

from pyterrier_mice import BiEncoderReranker, load_reranker
from pyterrier_mice.models.bi_encoder import BiEncoderModel, is_bi_encoder

QUERIES = ["what is the boundary layer of a wing", "shock wave in a tunnel", "x"]
DOCS = ["the boundary layer of a wing at high speed " * 3, "a wind tunnel with a shock", "hello world " * 200]


def _tiny_sentence_transformer(path, pooling="mean", normalize=True, max_seq_length=16):
    """A tiny BERT saved in sentence-transformers' layout (modules.json, 1_Pooling, …)."""
    from transformers import AutoModel
    from conftest import bert_config
    import torch

    torch.manual_seed(0)
    AutoModel.from_config(bert_config()).save_pretrained(path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir()
    flags = {
        f"pooling_mode_{m}": m == {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}[pooling]
        for m in ("mean_tokens", "cls_token", "max_tokens")
    }
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    return str(path)


@pytest.mark.minilm
def test_scores_are_sentence_transformers_cosines(minilm_path):
    st = pytest.importorskip("sentence_transformers")
    rr = load_reranker(str(minilm_path))
    assert isinstance(rr, BiEncoderReranker) and rr.max_length == 256
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    q = model.encode(QUERIES, normalize_embeddings=True)
    d = model.encode(DOCS, normalize_embeddings=True)
    with pytest.warns(UserWarning, match="1 of 3 documents exceeded 256 tokens"):
        ours = rr.score_pairs(QUERIES, DOCS)
    np.testing.assert_allclose(ours, (q * d).sum(1), rtol=0, atol=2e-6)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_pooling_and_layout_are_read_from_the_folder(pooling, tokenizer, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    path = _tiny_sentence_transformer(tmp_path / "st", pooling=pooling, normalize=pooling != "max")
    tokenizer.save_pretrained(path)
    assert is_bi_encoder(path) and not is_bi_encoder(str(tmp_path))
    rr = BiEncoderReranker.from_pretrained(path)
    assert (rr.model.pooling, rr.model.normalize, rr.max_length) == (pooling, pooling != "max", 16)
    model = st.SentenceTransformer(path, device="cpu")
    expected = (model.encode(QUERIES[:2]) * model.encode(DOCS[:2])).sum(1)
    with pytest.warns(UserWarning, match="truncated"):
        np.testing.assert_allclose(rr.score_pairs(QUERIES[:2], DOCS[:2]), expected, rtol=1e-5, atol=1e-6)
    # training goes through the same scores, with gradients
    scores = rr.forward_pairs(QUERIES[:2], DOCS[:2])
    assert scores.requires_grad and np.allclose(scores.detach().numpy(), expected, atol=1e-5)


def test_what_is_not_a_bi_encoder_is_said(tokenizer, tmp_path):
    from transformers import AutoModel
    from conftest import bert_config

    AutoModel.from_config(bert_config()).save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="not a sentence-transformers model.*pass normalize, pooling"):
        BiEncoderModel.from_pretrained(str(tmp_path / "plain"))
    model = BiEncoderModel.from_pretrained(str(tmp_path / "plain"), pooling="cls", normalize=False)
    with pytest.raises(ValueError, match="index= is for MICE"):
        BiEncoderReranker(model, tokenizer, index="somewhere")
