"""The PyTerrier contract, checked for every re-ranker of the package (one suite, parametrised)."""

import warnings

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

from conftest import DOCS, QUERIES
from rerankers import FACTORIES


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture(params=list(FACTORIES), scope="module")
def reranker(request, tokenizer, root):
    return FACTORIES[request.param](tokenizer, root, batch_size=4)


def frame(qids=("1", "2"), docnos=("d1", "d3", "d5", "d6")):
    rows = [
        {
            "qid": q,
            "query": QUERIES[q],
            "docno": d,
            "text": " ".join(DOCS[d]),
            "score": float(-i),
            "rank": i,
            "extra": f"{q}/{d}",
        }
        for q in qids
        for i, d in enumerate(docnos)
    ]
    return pd.DataFrame(rows)


def test_columns_scores_ranks(reranker):
    inp = frame()
    out = reranker(inp)
    assert len(out) == len(inp)
    assert set(out.columns) == set(inp.columns)
    assert out["score"].dtype == np.float64 and np.issubdtype(out["rank"].dtype, np.integer)
    assert out["extra"].tolist() != [] and (out["extra"] == out["qid"] + "/" + out["docno"]).all()
    for _, g in out.groupby("qid"):
        assert sorted(g["rank"]) == list(range(len(g)))
        assert (g.sort_values("rank")["score"].diff().dropna() <= 0).all()
    assert not np.allclose(out["score"], -out["rank"])  # old scores replaced


def test_empty_frame(reranker):
    out = reranker(frame().iloc[:0])
    assert len(out) == 0 and "score" in out.columns and "rank" in out.columns
    assert list(out.columns).count("score") == 1
    out = reranker(pd.DataFrame(columns=["qid", "query", "docno", "text"]))
    assert {"score", "rank"} <= set(out.columns)


def test_scores_do_not_depend_on_the_rest_of_the_frame(reranker):
    full = reranker(frame()).set_index(["qid", "docno"])["score"]
    for q, d in [("1", "d5"), ("2", "d1")]:
        alone = reranker(frame((q,), (d,))).set_index(["qid", "docno"])["score"]
        np.testing.assert_allclose(alone[(q, d)], full[(q, d)], atol=1e-5)
    shuffled = reranker(frame().sample(frac=1.0, random_state=1)).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(shuffled.loc[full.index], full, atol=1e-5)


def test_nan_text_warns_and_scores_as_empty(reranker):
    inp = frame()
    inp.loc[0, "text"] = None
    inp.loc[1, "text"] = np.nan
    with pytest.warns(UserWarning, match="'text' is NaN/None for 2 row"):
        out = reranker(inp)
    assert out["score"].notna().all()
    empty = inp.copy()
    empty.loc[[0, 1], "text"] = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reranker(empty).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(out.set_index(["qid", "docno"])["score"].loc[ref.index], ref, atol=1e-6)


def test_bad_inputs_are_named(reranker):
    with pytest.raises(pt.validate.InputValidationError, match="text"):
        reranker(frame().drop(columns=["text"]))
    bad = frame()
    bad.loc[2, "query"] = None
    with pytest.raises(ValueError, match="column 'query'"):
        reranker(bad)
    dup = pd.concat([frame(), frame().iloc[:1]])
    with pytest.raises(ValueError, match=r"duplicate \(qid, docno\)"):
        reranker(dup)
    num = frame()
    num["text"] = 3
    with pytest.raises(ValueError, match="non-string"):
        reranker(num)


def test_overlong_text_is_truncated_with_warning(reranker):
    inp = frame(("1",), ("d1",))
    inp.loc[0, "text"] = "wing " * 500
    with pytest.warns(UserWarning, match="truncated"):
        out = reranker(inp)
    assert np.isfinite(out["score"]).all()


def test_special_token_strings_in_text_are_plain_text(reranker):
    inp = frame(("1",), ("d1",))
    inp.loc[0, "text"] = "the wing [SEP] [CLS] boundary layer"
    assert np.isfinite(reranker(inp)["score"]).all()


def test_equality_and_repr(reranker, tokenizer, root):
    name = next(k for k, v in FACTORIES.items() if repr(v(tokenizer, root)) == repr(reranker))
    twin = FACTORIES[name](tokenizer, root, batch_size=4)
    assert twin == reranker and hash(twin) == hash(reranker)
    assert repr(twin) == repr(reranker) and type(reranker).__name__ in repr(reranker)
    assert pt.inspect.transformer_inputs(reranker)  # self-describing


def test_pt_testing_transformer_test_case(reranker):
    """pt.testing.TransformerTestCase (inspection and schematic) passes."""
    import unittest

    case = pt.testing.transformer_test_class(lambda: reranker)
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun == 2


def test_a_non_finite_score_is_named_not_ranked(reranker, monkeypatch):
    """Whatever the model, a NaN or infinite score is one line naming the re-ranker, qid and docno."""
    real = reranker._score

    def poisoned(*args):
        scores = np.array(real(*args), dtype=np.float32)
        scores[2] = np.nan
        return scores

    monkeypatch.setattr(reranker, "_score", poisoned)
    with pytest.raises(ValueError, match=f"{type(reranker).__name__}.*scored nan for qid='1', docno='d5'") as err:
        reranker(frame())
    assert len(str(err.value).splitlines()) == 1


def test_text_that_is_not_valid_unicode_is_named(reranker):
    bad = frame()
    bad.loc[1, "text"] = "wing \ud800 layer"
    with pytest.raises(ValueError, match="column 'text' holds text that is not valid Unicode.*docno='d3'"):
        reranker(bad)
    bad = frame()
    bad.loc[5, "query"] = "\udfff wing"
    with pytest.raises(ValueError, match="column 'query' holds text that is not valid Unicode.*qid='2'"):
        reranker(bad)


def test_inspection_lists_the_constructor_arguments_and_rebuilds_an_equal_reranker(reranker):
    import inspect

    attrs = {a.name: a.value for a in pt.inspect.transformer_attributes(reranker)}
    params = [p for p in inspect.signature(type(reranker).__init__).parameters if p != "self"]
    assert list(attrs) == params and {"model", "batch_size", "device", "precision"} <= set(attrs)
    assert attrs["batch_size"] == reranker.batch_size
    rebuilt = pt.inspect.transformer_apply_attributes(reranker)
    assert rebuilt is not reranker and rebuilt == reranker
    smaller = pt.inspect.transformer_apply_attributes(reranker, batch_size=2)
    assert smaller.batch_size == 2
    np.testing.assert_allclose(smaller(frame())["score"], reranker(frame())["score"], atol=1e-5)
