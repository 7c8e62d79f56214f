"""BM25 (PISA) top-k → re-rank, compared in pt.Experiment with significance tests.

    python experiments/rerank.py --dataset irds:beir/scifact/test \\
        --model cross-encoder/ms-marco-MiniLM-L6-v2 --kind cross-encoder --policy full mask1
    python experiments/rerank.py --dataset ../shared/data/cranfield --split test \\
        --model ./my-mice-checkpoint --kind mice

``--dataset`` is a local BEIR-layout folder or ``irds:<ir_datasets id>``. The PISA index is
built once under ``--work`` and reused. Prints nDCG@10 / RR@10 / AP with paired t-tests
against BM25 (Holm-corrected by default).
"""
import argparse
import os
import warnings

import pandas as pd
import pyterrier as pt
from pyterrier.measures import AP, RR, nDCG

from pyterrier_mice import CrossEncoderReranker, MiceIndex, MiceReranker
from pyterrier_mice.datasets import BeirFolder


def load_dataset(spec: str, split: str):
    """``(corpus_iter_fn, topics, qrels, text_source)`` for a BEIR folder or an irds: id."""
    if os.path.isdir(spec):
        ds = BeirFolder(spec)
        return ds.get_corpus_iter, ds.get_topics(split), ds.get_qrels(split), ds
    ds = pt.get_dataset(spec if spec.startswith("irds:") else f"irds:{spec}")
    return ds.get_corpus_iter, ds.get_topics("text"), ds.get_qrels(), ds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", action="append", required=True, help="checkpoint path or hub id (repeatable)")
    ap.add_argument("--kind", choices=["cross-encoder", "mice"], default="cross-encoder")
    ap.add_argument("--policy", nargs="*", default=[None], help="attention policies for cross-encoders")
    ap.add_argument("--index", help="a MiceIndex of document states for --kind mice")
    ap.add_argument("--k", type=int, default=100, help="BM25 depth to re-rank")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--correction", default="holm")
    ap.add_argument("--work", default="runs", help="where the PISA index and runs are kept")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated.*")

    from pyterrier_pisa import PisaIndex
    corpus_iter, topics, qrels, text_source = load_dataset(args.dataset, args.split)
    name = os.path.basename(os.path.normpath(args.dataset)).replace(":", "_").replace("/", "_")
    os.makedirs(args.work, exist_ok=True)
    pisa = PisaIndex(os.path.join(args.work, f"{name}.pisa"), text_field="text")
    if not pisa.built():
        pisa.index(corpus_iter())
    bm25 = pisa.bm25(num_results=1000)
    get_text = pt.text.get_text(text_source, "text")
    systems, names = [bm25], ["BM25"]
    common = dict(batch_size=args.batch_size, device=args.device, dtype=args.dtype)
    for model in args.model:
        if args.kind == "mice":
            index = MiceIndex(args.index) if args.index else None
            systems.append(bm25 % args.k >> get_text >> MiceReranker.from_pretrained(model, index=index, **common))
            names.append(f"MICE {os.path.basename(model)}")
        else:
            for policy in args.policy:
                rr = CrossEncoderReranker.from_pretrained(model, policy, **common)
                systems.append(bm25 % args.k >> get_text >> rr)
                names.append(f"CE {os.path.basename(model)} {rr.policy.name}")
    res = pt.Experiment(systems, topics, qrels, [nDCG @ 10, RR @ 10, AP], names=names, baseline=0,
                        correction=args.correction, round=4)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(res)
    return res


if __name__ == "__main__":
    main()
