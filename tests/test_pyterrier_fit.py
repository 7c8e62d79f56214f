"""How the package fits PyTerrier: ``pt.inspect`` on the indexer, pickles by path, the hint for a
missing ``text`` column, truncation warned once per re-ranker."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch

from pyterrier_mice import (
    CrossEncoderReranker,
    MiceIndex,
    MiceIndexError,
    MaskedCrossEncoderModel,
    MiceModel,
    MiceReranker,
)

from conftest import DOCS, QUERIES, tiny_encoder


@pytest.fixture(scope="module")
def mice_path(tokenizer, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fit-mice"))
    torch.manual_seed(0)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def index_path(mice_path, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fit-index") / "idx")
    mice = MiceReranker.from_pretrained(mice_path, batch_size=4)
    MiceIndex(path).indexer(mice, storage="fp32").index(corpus())
    return path


def corpus():
    return [{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()]


def frame(with_text=True):
    rows = [
        {"qid": q, "query": QUERIES[q], "docno": d, "score": 0.0, "rank": i}
        for q in ("1", "2")
        for i, d in enumerate(DOCS)
    ]
    df = pd.DataFrame(rows)
    return df.assign(text=[" ".join(DOCS[d]) for d in df["docno"]]) if with_text else df


def test_the_indexer_declares_its_inputs(mice_path, tmp_path):
    mice = MiceReranker.from_pretrained(mice_path)
    indexer = MiceIndex(str(tmp_path / "idx")).indexer(mice)
    assert pt.inspect.indexer_inputs(indexer) == [["docno", "text"]]
    other = MiceIndex(str(tmp_path / "idx2")).indexer(mice, text_field="body")
    assert pt.inspect.indexer_inputs(other) == [["docno", "body"]]


def test_an_index_pickles_by_path_and_reopens_equal(index_path):
    idx = MiceIndex(index_path)
    idx.docnos  # opened: its arrays are loaded
    data = pickle.dumps(idx)
    assert len(data) < 4096, len(data)
    again = pickle.loads(data)
    assert isinstance(again, MiceIndex) and again.path == idx.path and len(again) == len(idx)
    assert again.manifest == idx.manifest


def test_a_reranker_with_an_index_pickles_the_index_by_path(mice_path, index_path):
    rr = MiceReranker.from_pretrained(mice_path, batch_size=4, index=index_path)
    want = rr(frame())
    plain = MiceReranker.from_pretrained(mice_path, batch_size=4)
    # the index adds its path, not its contents
    assert len(pickle.dumps(rr)) - len(pickle.dumps(plain)) < 4096
    again = pickle.loads(pickle.dumps(rr))
    got = again(frame())
    assert again.last_stats["from_index"] == len(DOCS)
    np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())


def test_a_pickled_index_whose_folder_is_gone_says_so(index_path, tmp_path):
    import shutil

    copy = str(tmp_path / "idx")
    shutil.copytree(index_path, copy)
    data = pickle.dumps(MiceIndex(copy))
    shutil.rmtree(copy)
    with pytest.raises(MiceIndexError, match="not a built document-state index"):
        pickle.loads(data).docnos


@pytest.mark.parametrize("make", ["mice", "ce"])
def test_a_missing_text_column_names_get_text(make, mice_path, tokenizer, tmp_path):
    if make == "mice":
        rr = MiceReranker.from_pretrained(mice_path)
    else:
        MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(str(tmp_path))
        tokenizer.save_pretrained(str(tmp_path))
        rr = CrossEncoderReranker.from_pretrained(str(tmp_path))
    with pytest.raises(ValueError) as err:
        rr(frame(with_text=False))
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert "'text'" in message and "pt.text.get_text" in message, message


def test_truncation_is_warned_once_per_reranker(mice_path):
    rr = MiceReranker.from_pretrained(mice_path, doc_max_length=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rr(frame())
        rr(frame())
        rr(frame())
    said = [w for w in caught if "truncated" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in said]
    other = MiceReranker.from_pretrained(mice_path, doc_max_length=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other(frame())
    assert len([w for w in caught if "truncated" in str(w.message)]) == 1


def test_pt_inspect_reads_the_rerankers_inputs(mice_path):
    """The missing-text hint keeps PyTerrier's validation error (``pt.inspect`` reads its modes)."""
    inputs = pt.inspect.transformer_inputs(MiceReranker.from_pretrained(mice_path))
    assert any({"qid", "query", "docno", "text"} <= set(cols) for cols in inputs), inputs


@pytest.mark.parametrize("make", ["mice", "ce"])
def test_a_loaded_reranker_pickles_by_path_and_reopens_equal(make, mice_path, tokenizer, tmp_path):
    if make == "mice":
        path, load = mice_path, MiceReranker.from_pretrained
    else:
        path = str(tmp_path / "ce")
        MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(path)
        tokenizer.save_pretrained(path)
        load = CrossEncoderReranker.from_pretrained
    rr = load(path, batch_size=4)
    weights = sum(p.numel() * p.element_size() for p in rr.model.parameters())
    data = pickle.dumps(rr)
    assert len(data) < weights / 4, (len(data), weights)  # its path and arguments, not its weights
    again = pickle.loads(data)
    assert type(again) is type(rr) and again.batch_size == 4
    np.testing.assert_array_equal(again(frame())["score"].to_numpy(), rr(frame())["score"].to_numpy())


def test_a_reranker_changed_after_loading_pickles_its_weights(mice_path):
    rr = MiceReranker.from_pretrained(mice_path, batch_size=4)
    with torch.no_grad():
        next(rr.model.parameters()).add_(0.5)  # as a training step would
    data = pickle.dumps(rr)
    assert len(data) > sum(p.numel() * p.element_size() for p in rr.model.parameters()) / 2
    np.testing.assert_array_equal(pickle.loads(data)(frame())["score"].to_numpy(), rr(frame())["score"].to_numpy())


def test_a_reranker_whose_checkpoint_changed_since_pickling_is_refused(mice_path, tokenizer, tmp_path):
    import shutil

    path = str(tmp_path / "mice")
    shutil.copytree(mice_path, path)
    data = pickle.dumps(MiceReranker.from_pretrained(path))
    torch.manual_seed(5)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6, seed=5), tokenizer, 2, 2).save_pretrained(path)
    with pytest.raises(ValueError, match="no longer holds the weights"):
        pickle.loads(data)
