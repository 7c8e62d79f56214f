"""Where the time of a whole re-ranking pipeline goes, over real queries:
``bm25 % k >> pt.text.get_text(ds, "text") >> mice`` with MICE reading an index (optionally with K/V).

    python benchmarks/pipeline.py --dataset cranfield --k 100 [--kv] [--model PATH]

Without ``--model`` a random-init MICE-ℓ4+3 of the MiniLM-L12 shape is used (speed does not depend
on the weights). The index is built first (not timed). Reported: the pipeline's total time, the
time inside the model (encoding, reading stored states, the interaction) and the time outside it
(BM25, get_text, PyTerrier frame work, tokenisation, index lookup), per query and as shares; the
goal is that the time outside the model stays ≤ 5% of the total. A model with a prior (``model.prior``)
adds the prior's time (embedding the queries, and the documents the index does not hold);
``--prior-not-stored`` builds its index without the prior's document embeddings, to compare.
"""

import argparse
import copy
import hashlib
import os
import sys
import tempfile
import time
import warnings

import pyterrier as pt
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import minilm_l12_encoder, tokenizer  # noqa: E402

from pyterrier_mice import MiceIndex, MiceModel, MiceReranker  # noqa: E402
from pyterrier_mice.rerankers import profiling  # noqa: E402
from pyterrier_mice.evaluation.experiment import open_dataset  # noqa: E402
from pyterrier_mice.evaluation.retrieval import bm25  # noqa: E402

MODEL_SECTIONS = ("encode", "read", "interaction", "prior")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--dataset", default="cranfield", help="a BEIR-layout folder or irds:<id> (default: the bundled cranfield)"
    )
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--kv", action="store_true", help="index with each interaction layer's keys/values")
    ap.add_argument("--storage", default="fp16", help="index storage kind")
    ap.add_argument("--model", help="a MICE checkpoint (default: random MICE-ℓ4+3, MiniLM-L12 shape)")
    ap.add_argument(
        "--prior-not-stored",
        action="store_true",
        help="a model with a prior: build the index without its document embeddings (embedded at query time)",
    )
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mice-pipeline-bench"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    ds = open_dataset(args.dataset, args.split)
    topics = ds.topics.head(args.queries)
    if args.model:
        mice = MiceReranker.from_pretrained(args.model, batch_size=args.k)
    else:
        tok = tokenizer()
        mice = MiceReranker(
            MiceModel.from_encoder(minilm_l12_encoder(), tok, 4, 3), tok, batch_size=args.k, doc_max_length=512
        )
    stored_prior = mice.prior is not None and not args.prior_not_stored
    name = f"index-{args.kv}-{args.storage}-{stored_prior}-{hashlib.sha256(str(args.model).encode()).hexdigest()[:12]}"
    index = MiceIndex(os.path.join(args.work, name))
    if not index.built():
        print("building the index (not timed) ...", flush=True)
        builder = mice
        if mice.prior is not None and not stored_prior:
            builder = copy.copy(mice)
            builder.prior = None  # the same states, without the prior's embeddings
        index.indexer(builder, kv=args.kv, storage=args.storage).index(ds.collection.get_corpus_iter())
    mice = MiceReranker(
        mice.model, mice.tokenizer, batch_size=args.k, doc_max_length=mice.doc_max_length, index=index, prior=mice.prior
    )
    pipeline = (
        bm25(ds.collection, os.path.join(args.work, "bm25")) % args.k >> pt.text.get_text(ds.collection, "text") >> mice
    )
    pipeline(topics.head(2))  # warm-up
    with profiling.recording() as prof:
        start = time.perf_counter()
        pipeline(topics)
        total = time.perf_counter() - start
    sections = prof.exclusive()
    inside = sum(sections.get(k, 0.0) for k in MODEL_SECTIONS)
    n = len(topics)
    print(
        f"\n{n} queries of {ds.label} {args.split}, BM25 top-{args.k} → get_text → MICE from a "
        f"{args.storage} index{' with K/V' if args.kv else ''}"
        + ("" if mice.prior is None else f", a prior {'stored' if stored_prior else 'not stored'} in the index")
        + f"; CPU, {args.threads} threads\n"
    )
    print("| part | ms per query | share |\n|---|---|---|")
    print(f"| whole pipeline | {1000 * total / n:.1f} | 100% |")
    print(f"| inside the model ({', '.join(MODEL_SECTIONS)}) | {1000 * inside / n:.1f} | {100 * inside / total:.1f}% |")
    print(f"| outside the model | {1000 * (total - inside) / n:.1f} | {100 * (total - inside) / total:.1f}% |")
    for name in ("frame", "model", "tokenise", "lookup", "prior"):
        print(
            f"|   of which {name} | {1000 * sections.get(name, 0.0) / n:.1f} | "
            f"{100 * sections.get(name, 0.0) / total:.1f}% |"
        )
    rest = total - sum(sections.values())
    print(f"|   of which BM25 and get_text | {1000 * rest / n:.1f} | {100 * rest / total:.1f}% |")
    share = (total - inside) / total
    print(
        f"\nGoal: time outside the model ≤ 5% of the total: {'met' if share <= 0.05 else 'NOT met'} "
        f"({100 * share:.1f}%)"
    )


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
