"""Shared by the index tests: the corpus of the tiny MICE checkpoint (``mice_path``, in conftest) and a frame
to re-rank."""

import pandas as pd


from conftest import DOCS, QUERIES


def corpus():
    return [{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()]


def frame(qids=("1", "2", "3"), docnos=tuple(DOCS)):
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in qids for d in docnos]
    )
