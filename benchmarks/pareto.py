"""Effectiveness against latency on a real collection: one ``pt.Experiment`` (nDCG@10 beside PyTerrier's
mean response time, ``mrt``) over BM25 and every way this package re-ranks its top ``k``, with the
Pareto front, and the ranking cost of each reduced precision against fp32.

    python benchmarks/pareto.py --dataset cranfield --k 50 --cosine $M \\
        --ce runs/ce/final --mice runs/mice/final --colbert runs/colbert/final \\
        --out pyterrier_mice/pt_docs/results/pareto_cranfield.md \\
        --json pyterrier_mice/pt_docs/results/pareto_cranfield.json \\
        --figure pyterrier_mice/pt_docs/figures/pareto_cranfield.png

The systems, all on the same BM25 top ``k`` (their times include BM25, the text lookup and PyTerrier):

- BM25; MiniLM's cosine (``--cosine``, a sentence-transformers folder);
- the cross-encoder (``--ce``), and its weights under each paper mask (no retraining: what a mask
  costs a model trained without it);
- MICE (``--mice``) on the fly, from an index of document states and from an index of K/V
  (built once, before timing: the build is a collection's one-off cost);
- ColBERT from its index (``--colbert``, optional);
- each trained model fused with BM25 at the weight its training chose (``fusion.json``);
- the cross-encoder, MICE (each path) and ColBERT in bf16 and int8 (``precision=``), and FlashRank on
  the cross-encoder's weights (ONNX, int8) where the bench extra is installed.

Agreement (``--json``'s ``agreement``, read by ``benchmarks/efficiency.py --agreement``): each
reduced-precision row against the same path in fp32, by the largest score change, the mean Kendall τ
of the two rankings of each query's candidates, and the change in nDCG@10.

Each model folder must not have been validated on the evaluated queries (its ``validation.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import torch
from ir_measures import nDCG

from pyterrier_mice import (
    BiEncoderReranker,
    ColBERTReranker,
    CrossEncoderReranker,
    MiceIndex,
    MiceReranker,
    ScoreFusion,
)
from pyterrier_mice.evaluation.experiment import open_dataset
from pyterrier_mice.evaluation.retrieval import bm25
from pyterrier_mice.evaluation.splits import check_model_not_validated_on

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import figures  # noqa: E402
import peers  # noqa: E402

PRECISIONS = ("bf16", "int8")
MEASURE = nDCG @ 10


def mask_policies(num_layers: int) -> dict[str, str]:
    """The paper's masks for a model of ``num_layers`` layers (Mask 3 and PreTTR separate the first
    third of the layers, as the paper's ℓ = 4 does of 12)."""
    third = max(1, num_layers // 3)
    return {
        "Mask 0": "mask0",
        "Mask 1": "mask1",
        "Mask 2": "mask2",
        f"Mask 3-{third}": f"mask3-{third}",
        "Sparse CE": "sparse_ce",
        f"PreTTR-{third}": f"prettr-{third}",
    }


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-b of two score vectors over the same items (ties counted as τ-b counts them)."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), 1)
    da, db = da[upper], db[upper]
    denom = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float((da * db).sum() / denom) if denom else 1.0


def evaluate(run: pd.DataFrame, qrels: pd.DataFrame) -> float:
    """nDCG@10 of ``run`` (qid, docno, score) against ``qrels`` (qid, docno, label)."""
    return ir_measures.calc_aggregate(
        [MEASURE],
        qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"}),
        run.rename(columns={"qid": "query_id", "docno": "doc_id"}),
    )[MEASURE]


def agreement(reference: pd.DataFrame, other: pd.DataFrame, qrels: pd.DataFrame) -> dict:
    """max |Δ score|, mean Kendall τ per query and ΔnDCG@10 of ``other`` against ``reference``
    (two runs of the same candidates)."""
    joined = reference.merge(other, on=["qid", "docno"], suffixes=("_ref", "_other"), validate="one_to_one")
    if not len(joined) == len(reference) == len(other):
        raise ValueError("the two runs do not rank the same candidates")
    taus = [
        kendall_tau(g["score_ref"].to_numpy(), g["score_other"].to_numpy())
        for _, g in joined.groupby("qid", sort=False)
    ]
    return {
        "max_abs": float((joined["score_ref"] - joined["score_other"]).abs().max()),
        "kendall": float(np.mean(taus)),
        "delta": float(evaluate(other, qrels) - evaluate(reference, qrels)),
    }


class FlashRankReranker(pt.Transformer):
    """FlashRank on a cross-encoder's weights (exported to ONNX, int8) as a PyTerrier re-ranker."""

    def __init__(self, ce: CrossEncoderReranker, folder: str):
        self.folder = folder
        peers.save_flashrank(ce.model, ce.tokenizer, folder, max_length=ce.max_length)
        self.score, _ = peers.flashrank(folder, max_length=ce.max_length)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        if not len(inp):
            return inp.assign(score=pd.Series(dtype=float), rank=pd.Series(dtype=int))
        scored = [group.assign(score=self.score(group)) for _, group in inp.groupby("qid", sort=False)]
        return pt.model.add_ranks(pd.concat(scored))


def systems_of(args, ds, prefix, work) -> tuple[dict, dict]:
    """name → pipeline, and efficiency.py's name of each reduced-precision row → (its name here, the
    name of the same path in fp32)."""
    bs = dict(batch_size=args.batch_size)
    systems, pairs = {}, {}

    def add(name, reranker, fp32=None, key=None):
        systems[name] = prefix >> reranker
        if key:
            pairs[key] = (name, fp32)

    if args.cosine:
        add("cosine (MiniLM)", BiEncoderReranker.from_pretrained(args.cosine, **bs))
    ce = CrossEncoderReranker.from_pretrained(args.ce, **bs)
    add("CE", ce)
    for p in PRECISIONS:
        add(f"CE, {p}", CrossEncoderReranker.from_pretrained(args.ce, precision=p, **bs), "CE", f"cross-encoder@{p}")
    if peers.missing() is None:
        add(
            "FlashRank (CE weights, ONNX int8)",
            FlashRankReranker(ce, os.path.join(work, "flashrank")),
            "CE",
            "flashrank",
        )
    else:
        print(f"FlashRank left out: not installed here ({peers.missing()})", file=sys.stderr)
    if not args.no_masks:
        for label, policy in mask_policies(ce.model.encoder.config.num_hidden_layers).items():
            add(f"CE weights, {label}", CrossEncoderReranker.from_pretrained(args.ce, policy=policy, **bs))
    add("CE + BM25", ScoreFusion.from_pretrained(args.ce, ce))
    if args.mice:
        mice = MiceReranker.from_pretrained(args.mice, **bs)
        indexes = {
            "states": MiceIndex(os.path.join(work, "mice-states")),
            "K/V": MiceIndex(os.path.join(work, "mice-kv")),
        }
        for form, index in indexes.items():
            index.indexer(mice, kv=form == "K/V", storage="fp16", overwrite=True, verbose=False).index(
                ds.collection.get_corpus_iter()
            )
        add("MICE, on the fly", mice)
        add("MICE + BM25", ScoreFusion.from_pretrained(args.mice, mice))
        for form, index in indexes.items():
            add(f"MICE, {form} index", MiceReranker.from_pretrained(args.mice, index=index, **bs))
        for p in PRECISIONS:
            add(
                f"MICE, on the fly, {p}",
                MiceReranker.from_pretrained(args.mice, precision=p, **bs),
                "MICE, on the fly",
                f"mice@{p}",
            )
            for form, index in indexes.items():
                key = {"states": "mice-index", "K/V": "mice-index-kv"}[form]
                rr = MiceReranker.from_pretrained(args.mice, index=index, precision=p, **bs)
                add(f"MICE, {form} index, {p}", rr, f"MICE, {form} index", f"{key}@{p}")
    if args.colbert:
        colbert = ColBERTReranker.from_pretrained(args.colbert, **bs)
        index = MiceIndex(os.path.join(work, "colbert"))
        index.indexer(colbert, storage="fp16", overwrite=True, verbose=False).index(ds.collection.get_corpus_iter())
        add("ColBERT, index", ColBERTReranker.from_pretrained(args.colbert, index=index, **bs))
        for p in PRECISIONS:
            rr = ColBERTReranker.from_pretrained(args.colbert, index=index, precision=p, **bs)
            add(f"ColBERT, index, {p}", rr, "ColBERT, index", f"colbert-index@{p}")
    return systems, pairs


def file_name(name: str) -> str:
    """A system's name as PyTerrier's save_dir accepts it."""
    return name.replace("/", "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cranfield", help="a BEIR-layout folder, a bundled name or irds:<id>")
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=50, help="BM25's top k, re-ranked (default 50)")
    ap.add_argument("--cosine", help="a sentence-transformers folder: its cosine as a re-ranker")
    ap.add_argument("--ce", required=True, help="a trained cross-encoder (with fusion.json)")
    ap.add_argument("--mice", help="a trained MICE (with fusion.json)")
    ap.add_argument("--colbert", help="a trained ColBERT")
    ap.add_argument("--no-masks", action="store_true", help="leave out the CE's weights under the paper's masks")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--work", help="runs and indexes (default: a temporary folder)")
    ap.add_argument("--out", help="also write the tables (Markdown) here")
    ap.add_argument("--json", help="also write the points and the agreement here (efficiency.py --agreement reads it)")
    ap.add_argument("--figure", help="draw the Pareto figure here (PNG)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = args.work or tempfile.mkdtemp(prefix="mice-pareto-")
    runs = os.path.join(work, "runs")
    os.makedirs(runs, exist_ok=True)
    ds = open_dataset(args.dataset, args.split)
    for folder in (args.ce, args.mice, args.colbert):
        if folder:
            check_model_not_validated_on(folder, ds.topics)
    first = bm25(ds.collection, os.path.join(work, "indexes"), num_results=args.k)
    prefix = first >> pt.text.get_text(ds.collection, "text")
    systems, pairs = systems_of(args, ds, prefix, work)
    systems = {"BM25": first, **systems}
    warm = ds.topics.head(2)
    for pipeline in systems.values():  # first calls (lazy loads, kernels) outside the timings
        pipeline(warm)
    names = list(systems)
    res = pt.Experiment(
        list(systems.values()),
        ds.topics,
        ds.qrels,
        [MEASURE, "mrt"],
        names=[file_name(n) for n in names],
        baseline=0,
        correction="holm",
        save_dir=runs,
        save_mode="overwrite",
        precompute_prefix=True,  # BM25 and the text lookup once; their time is added to every system's
    )
    res["name"] = names
    ms = dict(zip(names, res["mrt"]))
    ndcg = dict(zip(names, res[str(MEASURE)]))
    front = figures.pareto_front({n: (ms[n], ndcg[n]) for n in names})
    runs_of = {n: pt.io.read_results(os.path.join(runs, file_name(n) + ".res.gz")) for n in names}
    rows = {}
    for key, (name, fp32) in pairs.items():
        rows[key] = {
            **agreement(runs_of[fp32], runs_of[name], ds.qrels),
            "speedup": ms[fp32] / ms[name],
            "system": name,
        }
    machine = f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}"
    title = f"{ds.label}: BM25 top-{args.k} re-ranked, {len(ds.topics)} queries ({machine})"
    lines = [
        f"{title}. nDCG@10 with ↑/↓ where a system differs from BM25 (paired t-test, Holm-corrected, p < 0.05); "
        "ms per query: PyTerrier's mean response time (BM25, text lookup and re-ranking; indexes built beforehand); "
        "front: on the Pareto front (nothing faster is as effective).",
        "",
        "| system | nDCG@10 | ms / query | × CE's time | front |",
        "|---|---|---|---|---|",
    ]
    for i, n in enumerate(names):
        sign = ""
        if i and res.iloc[i][f"{MEASURE} reject"]:
            sign = "↑" if res.iloc[i][f"{MEASURE} +"] > res.iloc[i][f"{MEASURE} -"] else "↓"
        lines.append(
            f"| {n} | {ndcg[n]:.4f}{sign} | {ms[n]:.1f} | {ms[n] / ms['CE']:.2f} | {'●' if n in front else ''} |"
        )
    lines += [
        "",
        "Each reduced precision against the same path in fp32 (same candidates): speed-up in ms per query, "
        "largest score change, mean Kendall τ of each query's ranking, change in nDCG@10.",
        "",
        "| system | × its fp32 | max abs Δ score | Kendall τ | ΔnDCG@10 |",
        "|---|---|---|---|---|",
    ]
    for row in rows.values():
        lines.append(
            f"| {row['system']} | {row['speedup']:.2f} | {row['max_abs']:.3g} | {row['kendall']:.4f} "
            f"| {row['delta']:+.4f} |"
        )
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w", encoding="utf8") as f:
            f.write("\n".join(lines) + "\n")
    if args.json:
        saved = {
            "collection": f"{ds.label}, BM25 top {args.k}",
            "title": title,
            "command": " ".join(["python", "benchmarks/pareto.py", *(argv if argv is not None else sys.argv[1:])]),
            "systems": [{"system": n, "nDCG@10": ndcg[n], "ms_per_query": ms[n], "front": n in front} for n in names],
            "rows": rows,
        }
        with open(args.json, "w", encoding="utf8") as f:
            json.dump(saved, f, indent=1, ensure_ascii=False)
    if args.figure:
        print(figures.pareto({n: (ms[n], ndcg[n]) for n in names}, args.figure, title=title))


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
