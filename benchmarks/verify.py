"""What checking an index's checksums costs: re-ranking the BM25 top-k of a test split from an index
opened with ``verify="none"``, ``"lazy"`` (the default) and ``"full"``, and ``index.verify()`` alone
(after one untimed warm-up pass; the files are then in the page cache, so this is the cost of
computing the checksums, not of reading a cold disk).

    python benchmarks/verify.py --model runs/cranfield_mice_derived/final \\
        --dataset cranfield --k 50 [--kv]

The index is built first (not timed). Each mode is timed on a freshly opened index (so ``lazy``
pays for every chunk it touches once, its worst case), best of ``--runs``; the first-stage run and
document text are computed once beforehand, so only opening and re-ranking are timed.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

import pyterrier as pt
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import add_collection_args  # noqa: E402

from pyterrier_mice import MiceIndex, MiceReranker
from pyterrier_mice.evaluation.experiment import open_dataset
from pyterrier_mice.evaluation.retrieval import bm25


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_collection_args(ap)
    ap.add_argument("--kv", action="store_true", help="store each interaction layer's K/V too")
    ap.add_argument("--storage", default="fp16", help="storage kind")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mice-verify-bench"))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated.*")

    ds = open_dataset(args.dataset, args.split)
    first = bm25(ds.collection, os.path.join(args.work, "bm25"), num_results=args.k)
    frame = (first >> pt.text.get_text(ds.collection, "text"))(ds.topics)
    path = os.path.join(args.work, "index")
    shutil.rmtree(path, ignore_errors=True)
    builder = MiceReranker.from_pretrained(args.model, batch_size=64)
    index = MiceIndex(path).indexer(builder, kv=args.kv, storage=args.storage).index(ds.collection.get_corpus_iter())
    n_docs = len(index)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)

    MiceReranker.from_pretrained(args.model, batch_size=64, index=MiceIndex(path, verify="none"))(frame)  # warm-up
    rows = []
    for mode in ("none", "lazy", "full"):
        best = float("inf")
        for _ in range(args.runs):
            start = time.perf_counter()
            rr = MiceReranker.from_pretrained(args.model, batch_size=64, index=MiceIndex(path, verify=mode))
            rr(frame)
            best = min(best, time.perf_counter() - start)
        rows.append((f'open with verify="{mode}" + re-rank', best))
    best = float("inf")
    for _ in range(args.runs):
        start = time.perf_counter()
        MiceIndex(path, verify="none").verify()
        best = min(best, time.perf_counter() - start)
    rows.append(("index.verify() alone", best))

    base = rows[0][1]
    print(
        f"{ds.label} {args.split}: {len(frame)} pairs ({len(ds.topics)} queries × BM25 top-{args.k}), "
        f"index of {n_docs} documents, "
        f"{size / 2**20:.0f} MiB ({args.storage}{' + K/V' if args.kv else ''}); {torch.get_num_threads()} "
        f"threads, best of {args.runs}\n"
    )
    print('| what | time (s) | vs verify="none" |\n|---|---|---|')
    for name, t in rows:
        extra = f"{100 * (t - base) / base:+.1f}%" if name.startswith("open") else f"{size / 2**20 / t:.0f} MiB/s"
        print(f"| {name} | {t:.2f} | {extra} |")


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
