"""The storage table: each index storage kind (fp32, fp16, int8, int4, and the learned pq and pq1),
with and without each interaction layer's K/V, for one MICE model on one collection.

    python benchmarks/storage.py --model runs/cranfield_mice_derived/final \\
        --dataset cranfield --k 50 [--out benchmarks/results/storage_cranfield.md]

For each: disk bytes per document token, build time, the largest and the mean |score − score on the
fly in fp32| over every re-ranked pair, and nDCG@10 (BM25 top-k of the test split re-ranked), next
to MICE on the fly.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import pyterrier as pt
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import add_collection_args, report  # noqa: E402

from pyterrier_mice import MiceIndex, MiceReranker
from pyterrier_mice.evaluation import per_query
from pyterrier_mice.evaluation.experiment import open_dataset, rerank_experiment, system_identity
from pyterrier_mice.evaluation.retrieval import bm25


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_collection_args(ap)
    ap.add_argument("--kinds", nargs="+", default=["fp32", "fp16", "int8", "int4", "pq", "pq1"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mice-storage-bench"))
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*truncated.*")
    ds = open_dataset(args.dataset, args.split)
    fly = MiceReranker.from_pretrained(args.model, batch_size=64)
    systems, info = {"MICE on the fly": (fly, system_identity(fly, args.model))}, {}
    for kv in (False, True):
        for kind in args.kinds:
            name = f"{kind}{' + K/V' if kv else ''}"
            path = os.path.join(args.work, name.replace(" + K/V", "-kv"))
            shutil.rmtree(path, ignore_errors=True)
            start = time.perf_counter()
            index = MiceIndex(path).indexer(fly, kv=kv, storage=kind).index(ds.collection.get_corpus_iter())
            info[name] = {"build_s": time.perf_counter() - start, "bytes_per_token": index.bytes_per_token()}
            rr = MiceReranker.from_pretrained(args.model, batch_size=64, index=index)
            systems[name] = (rr, system_identity(rr, args.model, "index", name, index.manifest["model_fingerprints"]))
    res = rerank_experiment(ds, systems, k=args.k, work=os.path.join(args.work, "experiments"))
    ndcg = per_query(res, "nDCG@10").mean()
    # score errors against fp32 on the fly: the same candidates scored by each system
    cands = (
        bm25(ds.collection, os.path.join(args.work, "experiments", "indexes"), num_results=args.k)
        >> pt.text.get_text(ds.collection, "text")
    )(ds.topics)
    ref = fly(cands).set_index(["qid", "docno"])["score"]
    lines = [
        f"MICE {args.model} on {ds.label} {args.split} (BM25 top-{args.k}, {len(ds.topics)} queries, "
        f"{len(cands)} pairs); CPU, {args.threads} threads",
        "",
        "| storage | bytes / doc token | build (s) | max abs score error | mean abs score error | nDCG@10 |",
        "|---|---|---|---|---|---|",
        f"| on the fly (fp32) | – | – | – | – | {100 * ndcg['MICE on the fly']:.1f} |",
    ]
    for name in info:
        got = systems[name][0](cands).set_index(["qid", "docno"])["score"].loc[ref.index]
        err = np.abs(got.to_numpy() - ref.to_numpy())
        lines.append(
            f"| {name} | {info[name]['bytes_per_token']:.0f} | {info[name]['build_s']:.0f} | "
            f"{err.max():.2e} | {err.mean():.2e} | {100 * ndcg[name]:.1f} |"
        )
    report(lines, args.out, lead="\n")


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
