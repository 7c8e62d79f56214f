"""Long documents: ``pt.text.sliding >> reranker >> pt.text.max_passage()`` with every re-ranker of the
package (each passage scored as a document, each document scored by its best passage), and an index
built over the passages (one docno per passage, ``d1%p0``…) serving the same pipeline."""

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

from pyterrier_mice import MiceIndex, MiceReranker

from conftest import DOCS, QUERIES
from rerankers import FACTORIES


def _long_frame():
    long = {d: " ".join(t) + " " + " ".join(DOCS[e][1] for e in list(DOCS)[:3]) for d, t in list(DOCS.items())[:4]}
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": text} for q in ("1", "2") for d, text in long.items()]
    )


def _sliding():
    return pt.text.sliding(text_attr="text", length=8, stride=4, prepend_attr=None)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("passage-models"))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_each_document_scores_as_its_best_passage(name, tokenizer, root):
    rr = FACTORIES[name](tokenizer, root, batch_size=4)
    frame = _long_frame()
    got = (_sliding() >> rr >> pt.text.max_passage())(frame)
    assert len(got) == len(frame) and set(got["docno"]) == set(frame["docno"])
    passages = rr(_sliding()(frame))
    best = passages.assign(docno=passages["docno"].str.split("%p").str[0]).groupby(["qid", "docno"])["score"].max()
    got = got.set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(got.loc[best.index], best, rtol=0, atol=1e-6)


def test_an_index_of_passages_serves_the_passage_pipeline(mice_path, tmp_path):
    frame = _long_frame()
    docs = frame.drop_duplicates("docno")[["qid", "query", "docno", "text"]]
    passages = _sliding()(docs).drop_duplicates("docno")[["docno", "text"]]  # one docno per passage: d1%p0, …
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    MiceIndex(str(tmp_path / "passages")).indexer(fly, storage="fp32").index(passages.to_dict("records"))
    indexed = MiceReranker.from_pretrained(mice_path, index=str(tmp_path / "passages"))
    pipeline = _sliding() >> indexed >> pt.text.max_passage()
    got = pipeline(frame).set_index(["qid", "docno"])["score"]
    assert indexed.last_stats == {"encoded": 0, "from_index": len(passages)}
    expected = (_sliding() >> fly >> pt.text.max_passage())(frame).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=0, atol=1e-5)
