"""BM25 (PISA) top-k → re-rank, on one or more datasets, in the paper's table layout.

    python experiments/rerank.py --dataset irds:beir/scifact/test \\
        --model cross-encoder/ms-marco-MiniLM-L6-v2 --policy full mask1 mask2
    python experiments/rerank.py --dataset ../shared/data/cranfield --split test \\
        --model runs/cranfield_mice/best --model runs/cranfield_ce/best

``--dataset`` (repeatable) is a local BEIR-layout folder or ``irds:<ir_datasets id>`` (document
text built per dataset as the reference implementation does, e.g. TREC-COVID "abstract title"); ``--model``
(repeatable) a checkpoint of this package (its kind is read from its config) or any HF
cross-encoder (run under each ``--policy``). Prints nDCG@10 per dataset and system with ↑/↓
marks (paired t-test against BM25, Holm-corrected; ``--test welch`` for the reference's unpaired
test), ID/OOD averages, as Markdown (and LaTeX with ``--latex``). Runs are saved under
``--work`` and reused on reruns.
"""
import argparse
import os
import warnings

import pyterrier as pt
from pyterrier.measures import AP, RR, nDCG

from pyterrier_mice.datasets import BeirFolder, IrdsCollection
from pyterrier_mice.evaluation import paper_table, to_latex, to_markdown
from transformers import AutoConfig

from pyterrier_mice import CrossEncoderReranker, PreTTRModel
from pyterrier_mice.training.models import load_reranker, reranker_class

IN_DOMAIN = ("msmarco-passage/dev/small", "msmarco-passage/trec-dl-2019/judged",
             "msmarco-passage/trec-dl-2020/judged")


def load_dataset(spec: str, split: str):
    """``(name, corpus_iter_fn, topics, qrels, text_source)`` for a BEIR folder or an irds: id."""
    if os.path.isdir(spec):
        ds = BeirFolder(spec)
        return os.path.basename(os.path.normpath(spec)), ds.get_corpus_iter, ds.get_topics(split), ds.get_qrels(split), ds
    ds = IrdsCollection(spec)  # document text built per dataset as the reference does
    return ds.irds_id, ds.get_corpus_iter, ds.get_topics(), ds.get_qrels(), ds


def short_name(path: str) -> str:
    """The last two parts of a checkpoint path (e.g. ``cranfield_mice-best``; no "/" for save_dir)."""
    parts = os.path.normpath(path).split(os.sep)
    return "-".join(parts[-2:])


def systems_for(args):
    common = dict(batch_size=args.batch_size, device=args.device, dtype=args.dtype)
    for model in args.model:
        kind = AutoConfig.from_pretrained(model).model_type
        if reranker_class(kind) is not CrossEncoderReranker or kind == PreTTRModel.config_class.model_type:
            yield f"{kind.replace('mice_', '').upper()} {short_name(model)}", load_reranker(model, **common)
        else:
            for policy in args.policy:
                rr = load_reranker(model, policy=policy, **common)
                yield f"CE {short_name(model)} {rr.policy.name}", rr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", required=True)
    ap.add_argument("--split", default="test", help="qrels split of local BEIR folders")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--policy", nargs="*", default=[None], help="attention policies for plain cross-encoders")
    ap.add_argument("--k", type=int, default=100, help="BM25 depth to re-rank (paper: 1000)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--test", default="t", choices=["t", "welch", "wilcoxon"])
    ap.add_argument("--correction", default="holm", help="a statsmodels multipletests method, or 'none'")
    ap.add_argument("--measure", default="nDCG@10")
    ap.add_argument("--latex", action="store_true")
    ap.add_argument("--work", default="runs/experiments", help="PISA indexes and saved runs")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated.*")

    from pyterrier_pisa import PisaIndex
    rerankers = list(systems_for(args))
    results, groups = {}, {"ID": [], "OOD": []}
    for spec in args.dataset:
        name, corpus_iter, topics, qrels, text_source = load_dataset(spec, args.split)
        work = os.path.join(args.work, name.replace("/", "_"))
        os.makedirs(work, exist_ok=True)
        pisa = PisaIndex(os.path.join(work, "bm25.pisa"), text_field="text")
        if not pisa.built():
            pisa.index(corpus_iter())
        bm25 = pisa.bm25(num_results=1000)
        get_text = pt.text.get_text(text_source, "text")
        names = ["BM25"] + [n for n, _ in rerankers]
        systems = [bm25] + [bm25 % args.k >> get_text >> rr for _, rr in rerankers]
        os.makedirs(os.path.join(work, "runs"), exist_ok=True)
        results[name] = pt.Experiment(systems, topics, qrels, [nDCG @ 10, RR @ 10, AP], names=names,
                                      perquery=True, save_dir=os.path.join(work, "runs"), save_mode="reuse")
        groups["ID" if name in IN_DOMAIN else "OOD"].append(name)
    correction = None if args.correction == "none" else args.correction
    table = paper_table(results, args.measure, "BM25", groups, args.test, correction)
    print(f"{args.measure} (×100); ↑/↓: significantly better/worse than BM25 "
          f"({args.test}-test, correction={correction}, α=0.05)\n")
    print(to_markdown(table))
    if args.latex:
        print("\n" + to_latex(table))
    return table


if __name__ == "__main__":
    main()
