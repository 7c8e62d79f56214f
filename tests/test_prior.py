"""A model's prior: a bi-encoder's similarity × a scale, added to every score of the model, in scoring,
in training, through saving and loading, and carried by ``derive``."""

import json
import os

import pandas as pd
import pytest
import torch

from pyterrier_mice import BiEncoderReranker, CrossEncoderReranker, MaskedCrossEncoderModel, MiceReranker
from pyterrier_mice.models.prior import PRIOR_FOLDER, Prior

from conftest import tiny_encoder

QUERIES = ["boundary layer flow", "shock wave heat", "boundary layer flow"]
DOCS = ["the flow of a boundary layer on a wing", "heat transfer behind a shock wave", "a wing in supersonic flow"]


def _frame():
    return pd.DataFrame(
        {"qid": ["1", "2", "1"], "query": QUERIES, "docno": ["a", "b", "c"], "text": DOCS, "score": [3.0, 2.0, 1.0]}
    )


def _scores(rr) -> pd.Series:
    return rr(_frame()).set_index("docno")["score"].sort_index()


def _training(beir_folder, **settings) -> dict:
    """A training config's settings (all but output_dir and model) for a few CPU steps on ``beir_folder``,
    distilled from the starting model's cosine; ``settings`` replace its keys."""
    return {
        "batch_size": 2,
        "warmup": 0,
        "loss": "infonce+kl_div",
        "temperature": 0.05,
        "device": "cpu",
        "log_every": 0,
        "save_every": 0,
        "data": {"kind": "beir", "path": beir_folder, "split": "test", "bm25_k": 5, "teacher": "backbone"},
        **settings,
    }


@pytest.fixture(scope="module")
def prior(minilm_path):
    return Prior.load(str(minilm_path), 20.0)


def test_a_prior_scores_as_the_bi_encoder_times_its_scale(prior, minilm_path):
    """The prior's scores are the bi-encoder re-ranker's (sentence-transformers' similarity) × scale,
    with or without its embeddings kept."""
    cosine = _scores(BiEncoderReranker.from_pretrained(str(minilm_path)))
    got = pd.Series(prior.pair_scores(QUERIES, DOCS), index=["a", "b", "c"])
    expected = torch.tensor(20.0 * cosine.values)
    torch.testing.assert_close(torch.tensor(got.values).double(), expected, rtol=1e-6, atol=1e-5)
    with prior.keeping_embeddings():
        again = prior.pair_scores(QUERIES, DOCS)
        assert len(prior._cache) == 2 + 3  # each distinct text embedded once
    assert (again == got.values).all() and prior._cache is None


def test_a_prior_embeds_no_text_as_an_empty_matrix_with_or_without_its_embeddings_kept(prior):
    width = prior.model.get_sentence_embedding_dimension()
    assert prior.embed([], "document").shape == (0, width)
    with prior.keeping_embeddings():
        assert prior.embed([], "document").shape == (0, width)


def test_priors_of_one_folder_share_their_embeddings_within_the_block_and_score_the_same(minilm_path, tmp_path):
    """Inside ``sharing_embeddings()``, two priors loaded from the same folder (at two scales, as a
    cross-encoder's and the MICE derived from it keep it) embed each distinct text once between them,
    and score exactly as outside it; a prior of another folder's files, or of a model built in memory,
    shares nothing."""
    import shutil

    from pyterrier_mice.models.prior import sharing_embeddings

    first, second = Prior.load(str(minilm_path), 20.0), Prior.load(str(minilm_path), 7.0)
    alone = [first.pair_scores(QUERIES, DOCS), second.pair_scores(QUERIES, DOCS)]
    copy = tmp_path / "copy"
    shutil.copytree(minilm_path, copy)
    (copy / "README.md").write_text("another file: another bi-encoder as far as sharing knows")
    other = Prior.load(str(copy), 20.0)
    in_memory = Prior(first.model, 20.0)
    encoded = []
    for p in (first, second, other, in_memory):
        p._encode = (lambda f: lambda texts, side: encoded.append(len(texts)) or f(texts, side))(p._encode)
    with sharing_embeddings():
        shared = [first.pair_scores(QUERIES, DOCS), second.pair_scores(QUERIES, DOCS)]
        assert encoded == [2, 3]  # the second prior embedded nothing: 2 queries and 3 documents, once
        other.pair_scores(QUERIES, DOCS)
        in_memory.pair_scores(QUERIES, DOCS)
        assert encoded == [2, 3, 2, 3, 2, 3]
    assert all((a == b).all() for a, b in zip(alone, shared))
    first.pair_scores(QUERIES, DOCS)  # outside the block nothing is kept
    assert encoded[-2:] == [2, 3] and len(encoded) == 8
    before = Prior.load(str(copy), 20.0)
    (copy / "README.md").write_text("rewritten after that load")  # a prior loaded now is another model
    assert Prior.load(str(copy), 20.0).shared_key() != before.shared_key()


@pytest.mark.parametrize("family", ["cross-encoder", "mice"])
def test_a_prior_adds_to_every_score_in_scoring_and_in_training(family, prior, tokenizer, mice_path):
    """With a prior, a re-ranker's scores are the model's plus the prior's, in PyTerrier and in the
    scores training differentiates (whose gradients are the model's alone)."""
    if family == "mice":
        plain = MiceReranker.from_pretrained(mice_path)
        with_prior = MiceReranker.from_pretrained(mice_path, prior=prior)
    else:
        model = MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", seed=3), tokenizer)
        plain, with_prior = CrossEncoderReranker(model, tokenizer), CrossEncoderReranker(model, tokenizer, prior=prior)
    added = pd.Series(prior.pair_scores(QUERIES, DOCS), index=["a", "b", "c"])
    torch.testing.assert_close(
        torch.tensor(_scores(with_prior).values), torch.tensor((_scores(plain) + added).values), rtol=0, atol=1e-5
    )
    trained = with_prior.training_scores(QUERIES, DOCS)
    torch.testing.assert_close(trained.detach().double(), torch.tensor(_scores(with_prior).values), rtol=0, atol=1e-5)
    trained.sum().backward()
    assert all(p.grad is None for p in prior.model.parameters())
    assert any(p.grad is not None for p in with_prior.model.parameters())
    assert plain.cache_key() != with_prior.cache_key() and plain != with_prior
    assert "prior=Prior(" in repr(with_prior)


def test_a_model_saved_with_its_prior_loads_with_it_and_never_without(prior, tokenizer, tmp_path):
    """Saved with its prior (prior/ and the config's prior_scale), a model loads with it and scores the
    same; a folder that lost its prior/, or a model given without one, is refused in one line."""
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", seed=3), tokenizer)
    rr = CrossEncoderReranker(model, tokenizer, prior=prior)
    folder = tmp_path / "ce"
    prior.save(model, str(folder))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert json.load(open(folder / "config.json"))["prior_scale"] == 20.0
    loaded = CrossEncoderReranker.from_pretrained(str(folder))
    assert loaded.prior is not None and loaded.prior.scale == 20.0
    assert (_scores(loaded).values == _scores(rr).values).all()
    assert loaded.cache_key() == rr.cache_key()
    with pytest.raises(ValueError, match="none was given: load it with from_pretrained"):
        CrossEncoderReranker(MaskedCrossEncoderModel.from_pretrained(folder), tokenizer)
    with pytest.raises(ValueError, match="prior scale 10.0 differs"):
        CrossEncoderReranker(loaded.model, tokenizer, prior=Prior(prior.model, 10.0))
    os.rename(folder / PRIOR_FOLDER, tmp_path / "elsewhere")
    with pytest.raises(ValueError, match=r"prior_scale=20.0\), but it holds no prior/ folder"):
        CrossEncoderReranker.from_pretrained(str(folder))


def test_training_with_a_prior_saves_it_and_derive_keeps_it(minilm_path, beir_folder, tmp_path, capsys):
    """``model.prior: backbone`` trains a cross-encoder whose scores add the starting bi-encoder's
    cosine; its folder holds the prior; training from that folder must keep it (said, not lost), and
    ``derive`` keeps it in MICE."""
    from pyterrier_mice import load_reranker
    from pyterrier_mice.cli import main
    from pyterrier_mice.training import TrainConfig, run
    from pyterrier_mice.training.config import ConfigError

    common = _training(beir_folder, steps=1, eval={"every": 0})
    model = {"type": "cross-encoder", "backbone": str(minilm_path), "max_length": 64, "prior": "backbone"}
    run(TrainConfig.from_dict({"output_dir": str(tmp_path / "ce"), "model": model, **common}))
    final = tmp_path / "ce" / "final"
    assert (final / PRIOR_FOLDER / "modules.json").exists()
    rr = load_reranker(str(final))
    assert isinstance(rr, CrossEncoderReranker) and rr.prior.scale == 20.0

    again = {"type": "cross-encoder", "backbone": str(final), "max_length": 64}
    cfg = TrainConfig.from_dict({"output_dir": str(tmp_path / "again"), "model": again, **common})
    cfg.data.teacher = None
    cfg.loss = "infonce"
    with pytest.raises(ConfigError, match=r"with a prior .*--set model.prior=.*prior --set model.prior_scale=20"):
        cfg.check_data()

    out = tmp_path / "mice"
    sets = ["steps=1", "data.split=test", "eval.every=0", "data.bm25_k=5", "model.query_max_length=16"]
    args = ["derive", str(final), "--data", beir_folder, "--out", str(out), "--set", "model.doc_max_length=32"]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    mice = load_reranker(str(out / "final"))
    assert isinstance(mice, MiceReranker) and mice.prior is not None and mice.prior.scale == 20.0
    saved = json.load(open(out / "train_config.json"))
    assert saved["model"]["prior"] == str(final / PRIOR_FOLDER)


@pytest.mark.parametrize("kv", [False, True])
def test_an_index_stores_the_prior_embeddings_and_reranks_as_on_the_fly(kv, prior, mice_path, tmp_path, monkeypatch):
    """An index built by a model with a prior stores each document's prior embedding: re-ranking from it
    scores as on the fly, and embeds no document it holds (only a changed text, and the queries)."""
    from pyterrier_mice import MiceIndex

    fly = MiceReranker.from_pretrained(mice_path, prior=prior)
    corpus = [{"docno": d, "text": t} for d, t in zip("abc", DOCS)]
    index = MiceIndex(str(tmp_path / "idx")).index(iter(corpus), reranker=fly, kv=kv, storage="fp32", verbose=False)
    assert index.prior_digest == prior.digest() and os.path.isfile(tmp_path / "idx" / "prior.bin")
    stored = MiceReranker.from_pretrained(mice_path, prior=prior, index=index)
    embedded = []
    encode = Prior._encode
    monkeypatch.setattr(
        Prior, "_encode", lambda self, texts, side: embedded.append((side, texts)) or encode(self, texts, side)
    )
    torch.testing.assert_close(
        torch.tensor(_scores(stored).values), torch.tensor(_scores(fly).values), rtol=0, atol=1e-5
    )
    assert stored.last_stats["prior_from_index"] == 3
    assert [side for side, _ in embedded] == ["query", "query", "document"]  # the one document: on the fly's

    embedded.clear()
    changed = _frame().assign(text=[DOCS[0], DOCS[1], "a wing in hypersonic flow"])
    with pytest.warns(UserWarning, match="under their docno but with another text"):
        got = stored(changed).set_index("docno")["score"].sort_index()
    torch.testing.assert_close(
        torch.tensor(got.values),
        torch.tensor(fly(changed).set_index("docno")["score"].sort_index().values),
        rtol=0,
        atol=1e-5,
    )
    assert ("document", ["a wing in hypersonic flow"]) in embedded and stored.last_stats["prior_from_index"] == 2


def test_a_prior_not_stored_in_the_index_is_embedded_and_a_corrupt_one_is_refused(prior, mice_path, tmp_path):
    """A model with a prior re-ranks correctly from an index built without it (or by another prior):
    it embeds the documents itself; stored prior embeddings corrupt on disk are refused in one line."""
    from pyterrier_mice import MiceIndex
    from pyterrier_mice.index.layout import MiceIndexError

    corpus = [{"docno": d, "text": t} for d, t in zip("abc", DOCS)]
    fly = MiceReranker.from_pretrained(mice_path, prior=prior)
    plain = MiceIndex(str(tmp_path / "plain")).index(
        iter(corpus), reranker=MiceReranker.from_pretrained(mice_path), verbose=False
    )
    assert plain.prior_digest is None
    stored = MiceReranker.from_pretrained(mice_path, prior=prior, index=plain)
    torch.testing.assert_close(
        torch.tensor(_scores(stored).values), torch.tensor(_scores(fly).values), rtol=0, atol=1e-5
    )
    assert "prior_from_index" not in stored.last_stats and stored.last_stats["from_index"] == 3

    MiceIndex(str(tmp_path / "idx")).index(iter(corpus), reranker=fly, verbose=False)
    with open(tmp_path / "idx" / "prior.bin", "r+b") as f:
        f.seek(8)
        f.write(b"\xff\xff\xff\xff")
    broken = MiceReranker.from_pretrained(mice_path, prior=prior, index=MiceIndex(str(tmp_path / "idx")))
    with pytest.raises(MiceIndexError, match="prior.bin: bytes .* do not match their checksums"):
        broken(_frame())


def test_the_equal_scale_spreads_the_prior_as_widely_as_the_model_within_queries():
    """``equal_scale`` is the ratio of within-query spreads: after it, the prior's scores vary within each
    query as much as the model's (pooled), whatever the queries' offsets; a prior that never varies within
    a query gets none, a model that never does leaves the prior alone to rank."""
    import numpy as np

    from pyterrier_mice.models.prior import equal_scale

    rng = np.random.default_rng(0)
    qids = np.repeat(["a", "b", "c"], 5)
    model = rng.normal(size=15) * 4 + np.repeat([100.0, -50.0, 3.0], 5)  # offsets per query do not count
    prior = rng.normal(size=15) * 0.1 + np.repeat([0.9, 0.1, 0.5], 5)
    scale = equal_scale(model, prior, qids)

    def spread(x):
        x = pd.Series(x)
        return float(np.sqrt(((x - x.groupby(qids).transform("mean")) ** 2).mean()))

    assert spread(scale * prior) == pytest.approx(spread(model), rel=1e-9)
    assert equal_scale(model, np.repeat([0.9, 0.1, 0.5], 5), qids) is None
    assert equal_scale(np.repeat([1.0, 2.0, 3.0], 5), prior, qids) == 1.0


def test_a_prior_kept_at_equal_scale_is_trained_without_and_saved_beside_the_model(minilm_path, beir_folder, tmp_path):
    """``model.prior_scale: equal``: the model trains without the prior; each validation measures the
    scale at which the prior spreads as the model does, and measures the two together; final/ holds the
    prior at that scale, and scores as the model alone plus that scale × the cosine."""
    import shutil

    from pyterrier_mice import load_reranker
    from pyterrier_mice.training import TrainConfig, run
    from pyterrier_mice.training.config import ConfigError

    common = _training(
        beir_folder, steps=2, eval={"split": "holdout", "holdout": 0.4, "k": 6, "every": 1, "measure": "nDCG@10"}
    )
    model = {"type": "cross-encoder", "backbone": str(minilm_path), "max_length": 64, "prior": "backbone"}
    equal = {**model, "prior_scale": "equal"}
    result = run(TrainConfig.from_dict({"output_dir": str(tmp_path / "ce"), "model": equal, **common}))
    last = result["history"][-1]
    assert {"val", "val_model", "prior_scale"} <= set(last) and last["prior_scale"] > 0
    final = tmp_path / "ce" / "final"
    rr = load_reranker(str(final))
    assert rr.prior is not None and rr.prior.scale == pytest.approx(last["prior_scale"])

    alone_dir = tmp_path / "alone"  # the same weights, without the prior
    shutil.copytree(final, alone_dir)
    shutil.rmtree(alone_dir / PRIOR_FOLDER)
    config = json.load(open(alone_dir / "config.json"))
    del config["prior_scale"]
    json.dump(config, open(alone_dir / "config.json", "w"))
    alone = load_reranker(str(alone_dir))
    assert alone.prior is None
    cosine = Prior.load(str(minilm_path), 1.0).pair_scores(_frame()["query"], _frame()["text"])
    expected = _scores(alone) + pd.Series(last["prior_scale"] * cosine, index=_frame()["docno"]).sort_index()
    pd.testing.assert_series_equal(_scores(rr), expected, atol=1e-4, rtol=0, check_names=False)

    no_prior = {k: v for k, v in model.items() if k != "prior"}
    run(TrainConfig.from_dict({"output_dir": str(tmp_path / "none"), "model": no_prior, **common}))
    trained = load_reranker(str(tmp_path / "none" / "final")).model.state_dict()  # the same seed, no prior at all
    assert all(torch.equal(trained[k], v) for k, v in rr.model.state_dict().items())

    for wrong in [{"prior": None}, {}]:
        cfg = {"output_dir": str(tmp_path / "x"), "model": {**model, "prior_scale": "equal", **wrong}, **common}
        if not wrong:
            cfg["eval"] = {**common["eval"], "every": 0}
        with pytest.raises(ConfigError, match=r"model.prior_scale='equal'.*set model.prior .*and eval.every"):
            TrainConfig.from_dict(cfg)
