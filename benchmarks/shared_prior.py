"""What sharing a kept cosine's embeddings saves in a table of models: the priors of a cross-encoder
and of the MICE derived from it, loaded from the same ``prior/`` files, scoring one collection's BM25
top-k candidates, each on its own, then both within :func:`sharing_embeddings` (as
``rerank_experiment``, and so ``rerank.py`` and ``recipes.py``, run them). Prints the wall seconds of
each way and checks that both give the same scores.

    python benchmarks/shared_prior.py --prior runs/ce/final/prior --prior runs/mice/final/prior \\
        --dataset cranfield --k 50
"""

import argparse
import contextlib
import os
import time

import numpy as np
import pandas as pd

from pyterrier_mice.evaluation.experiment import open_dataset
from pyterrier_mice.evaluation.retrieval import bm25
from pyterrier_mice.models.prior import Prior, sharing_embeddings


def candidates(dataset: str, k: int, work: str) -> tuple[list, list, np.ndarray, np.ndarray]:
    """The test split's queries, their BM25 top-``k`` documents' texts (each once) and the pairs' codes."""
    ds = open_dataset(dataset, "test")
    run = bm25(ds.collection, os.path.join(work, "indexes"), num_results=k)(ds.topics)
    texts = {d["docno"]: d["text"] for d in ds.collection.get_corpus_iter()}
    q_codes, queries = pd.factorize(run["query"])
    d_codes, docnos = pd.factorize(run["docno"])
    return list(queries), [texts[d] for d in docnos], q_codes, d_codes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prior", action="append", required=True, help="a model's prior/ folder (give two or more)")
    ap.add_argument("--dataset", default="cranfield", help="a BEIR-layout folder; its test split's queries")
    ap.add_argument("--k", type=int, default=50, help="BM25 depth")
    ap.add_argument("--work", default="runs/experiments", help="where the BM25 index is kept")
    args = ap.parse_args(argv)

    queries, docs, qidx, didx = candidates(args.dataset, args.k, args.work)
    print(f"{args.dataset}: {len(queries)} queries, {len(docs)} distinct candidates, {len(qidx)} pairs", flush=True)
    times, scores = {}, {}
    for way in ("each on its own", "sharing_embeddings"):
        priors = [Prior.load(path, 1.0) for path in args.prior]  # loaded afresh: nothing kept from before
        start = time.perf_counter()
        with sharing_embeddings() if way == "sharing_embeddings" else contextlib.nullcontext():
            scores[way] = [p.scores(queries, docs, qidx, didx) for p in priors]
        times[way] = time.perf_counter() - start
        print(f"{len(priors)} priors, {way}: {times[way]:.1f} s", flush=True)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(*scores.values()))
    print(f"saved {times['each on its own'] - times['sharing_embeddings']:.1f} s; largest score difference {gap:.2g}")


if __name__ == "__main__":
    main()
