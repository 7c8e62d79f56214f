"""The document-state index: same scores as on the fly, and it never gives a wrong score."""
import os

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch

from pyterrier_mice import MiceIndex, MiceIndexError, MiceModel, MiceReranker

from conftest import DOCS, QUERIES, tiny_encoder


@pytest.fixture(scope="module")
def mice_path(tokenizer, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("mice"))
    torch.manual_seed(0)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def corpus():
    return [{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()]


def frame(qids=("1", "2", "3"), docnos=tuple(DOCS)):
    return pd.DataFrame([{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])}
                         for q in qids for d in docnos])


@pytest.mark.parametrize("kv,dtype,tol", [(False, "fp32", 1e-5), (False, "fp16", 5e-3),
                                          (True, "fp32", 1e-5), (True, "fp16", 5e-3)])
def test_index_scores_equal_on_the_fly(mice_path, tmp_path, kv, dtype, tol):
    """fp32 states reproduce on-the-fly scores to 1e-5; fp16 storage to 5e-3 (tiny model)."""
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly, kv=kv, dtype=dtype).index(corpus())
    assert len(idx) == len(DOCS)
    rr = MiceReranker.from_pretrained(mice_path, batch_size=4, index=idx)
    a = fly(frame()).set_index(["qid", "docno"])["score"]
    b = rr(frame()).set_index(["qid", "docno"])["score"]
    assert rr.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    np.testing.assert_allclose(b.loc[a.index], a, atol=tol)


def test_artifact_load_and_fallback(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    MiceIndex(str(tmp_path / "idx")).indexer(fly, dtype="fp32").index(corpus()[:6])
    loaded = pt.Artifact.load(str(tmp_path / "idx"))
    assert isinstance(loaded, MiceIndex)
    rr = MiceReranker.from_pretrained(mice_path, batch_size=4, index=loaded)
    inp = frame()
    inp.loc[inp["docno"] == "d2", "text"] = "a changed text about wings"  # stale in the index
    inp = pd.concat([inp, frame(("1",), ("d1",)).assign(docno="new", text="a brand new doc")])
    got = rr(inp).set_index(["qid", "docno"])["score"]
    ref = fly(inp).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(got.loc[ref.index], ref, atol=1e-5)
    assert rr.last_stats["encoded"] == len(DOCS) - 6 + 1 + 1  # 6 missing, 1 new, 1 changed


def test_wrong_model_is_refused(mice_path, tokenizer, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly).index(corpus())
    torch.manual_seed(5)
    other = MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6, seed=5), tokenizer, 2, 2)
    with pytest.raises(MiceIndexError, match="different model"):
        MiceReranker(other, tokenizer, index=idx)
    with pytest.raises(MiceIndexError, match="doc_max_length"):
        MiceReranker.from_pretrained(mice_path, index=idx, doc_max_length=32)


def test_interrupted_build_never_loads(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path, batch_size=2)

    def dying():
        yield from corpus()[:5]
        raise KeyboardInterrupt("killed")

    path = str(tmp_path / "idx")
    with pytest.raises(KeyboardInterrupt):
        MiceIndex(path).indexer(fly).index(dying())
    assert not os.path.exists(path) and os.path.exists(path + ".building")
    with pytest.raises(MiceIndexError, match="interrupted build"):
        MiceReranker.from_pretrained(mice_path, index=MiceIndex(path))
    MiceIndex(path).indexer(fly).index(corpus())  # a rebuild cleans up
    assert not os.path.exists(path + ".building") and len(MiceIndex(path)) == len(DOCS)


def test_truncated_and_corrupt_files(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    path = str(tmp_path / "idx")
    MiceIndex(path).indexer(fly, kv=True).index(corpus())
    with open(os.path.join(path, "extras.bin"), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(path, "extras.bin")) - 10)
    with pytest.raises(MiceIndexError, match="truncated or corrupt"):
        MiceReranker.from_pretrained(mice_path, index=MiceIndex(path))
    MiceIndex(path).indexer(fly, overwrite=True).index(corpus())
    with open(os.path.join(path, "manifest.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(MiceIndexError, match="corrupt"):
        len(MiceIndex(path))


def test_bad_corpus_input(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    with pytest.raises(ValueError, match="duplicate docno 'd1'"):
        MiceIndex(str(tmp_path / "a")).indexer(fly).index(corpus() + corpus()[:1])
    with pytest.raises(KeyError, match="'text'"):
        MiceIndex(str(tmp_path / "b")).indexer(fly).index([{"docno": "x"}])
    MiceIndex(str(tmp_path / "c")).indexer(fly).index(corpus())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        MiceIndex(str(tmp_path / "c")).indexer(fly).index(corpus())


def test_saved_and_reloaded_model_matches_its_index(mice_path, tmp_path):
    """The fingerprint ignores what save/load changes (paths, versions), not the weights."""
    fly = MiceReranker.from_pretrained(mice_path)
    fly.model.save_pretrained(tmp_path / "copy")
    fly.tokenizer.save_pretrained(tmp_path / "copy")
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly).index(corpus())
    MiceReranker.from_pretrained(str(tmp_path / "copy"), index=idx)


def test_index_build_reports_truncation_once(mice_path, tmp_path):
    """Truncation over a whole build is one warning, not one per batch."""
    rr = MiceReranker.from_pretrained(mice_path, batch_size=2, doc_max_length=6)
    with pytest.warns(UserWarning) as record:
        MiceIndex(str(tmp_path / "idx")).indexer(rr, dtype="fp32").index(corpus())
    messages = [str(w.message) for w in record if "truncated" in str(w.message)]
    long_docs = sum(len(rr.tokenizer(d["text"], add_special_tokens=False)["input_ids"]) > 4 for d in corpus())
    assert messages == [f"MiceReranker: {long_docs} of {len(DOCS)} documents exceeded 6 tokens and were truncated"]
