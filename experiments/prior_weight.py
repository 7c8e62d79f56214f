"""How much of the starting model's cosine to keep beside a trained model: the sum ``model + λ·cosine``
of a run trained *without* the cosine, for a sweep of weights, on the run's validation queries and on
test splits, beside the weight ``model.prior_scale: equal`` gives (:func:`equal_scale`).

A diagnostic: the sweep reads the test splits for every weight, so no weight may be chosen from its
test rows; the validation rows show what held-out training queries would have chosen.

    python experiments/prior_weight.py --run runs/recipes_debian/debian/no-prior-ce-s12 \\
        --runs runs/recipes_debian/debian/experiments --name "CE, no cosine beside it#12" \\
        --test runs/collections/debian cranfield

``--run``: a finished training run (its ``train_config.json`` and ``final/validation.json``);
``--runs``: ``recipes.py``'s saved runs (``<work>/experiments``), whose ``<collection>/runs`` hold
the model's (``--name``), the cosine's and BM25's test runs. The weight ``α`` puts the cosine at
``λ = r·α/(1-α)``, with ``r`` the ratio of the two scores' standard deviations over the validation
pairs (α = 0.5: about as much of each). Prints nDCG@10 (×100 on the test splits) and paired t-test
p-values against BM25 and against the cosine (uncorrected).
"""

import argparse
import glob
import json
import os

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
from scipy.stats import ttest_rel

from pyterrier_mice.evaluation.experiment import open_dataset
from pyterrier_mice.models.prior import equal_scale
from pyterrier_mice.rerankers.loading import load_reranker
from pyterrier_mice.training.data import bm25_run

COSINE, BM25 = "MiniLM cosine (zero-shot)", "BM25"
MEASURE = ir_measures.parse_measure("nDCG@10")


def per_query(res: pd.DataFrame, qrels: pd.DataFrame, qids: list) -> np.ndarray:
    r = {"qid": "query_id", "docno": "doc_id", "label": "relevance"}
    values = {
        m.query_id: m.value for m in ir_measures.iter_calc([MEASURE], qrels.rename(columns=r), res.rename(columns=r))
    }
    return np.array([values.get(q, 0.0) for q in qids])


def saved_runs(folder: str, names: list[str]) -> dict[str, pd.DataFrame]:
    """recipes.py's saved runs of one collection named ``names``. A saved run's file is named by the
    system that produced it, and lists every name it was produced under, so one name can label
    several runs (a recipe's model before and after the recipe changed): such a name is refused."""
    paths: dict[str, list[str]] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            for name in json.load(f)["names"]:
                paths.setdefault(name, []).append(path)
    for name in names:
        found = paths.get(name, [])
        if not found:
            raise SystemExit(f"{folder}: no saved run is named {name!r} (named there: {sorted(paths)})")
        if len(found) > 1:
            raise SystemExit(
                f"{folder}: {len(found)} saved runs are named {name!r} ({', '.join(map(os.path.basename, found))}), "
                "runs of different systems; remove the stale ones, or rerun recipes.py with a new --work"
            )
    return {name: pt.io.read_results(paths[name][0][:-5] + ".res.gz")[["qid", "docno", "score"]] for name in names}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished training run, trained without the cosine")
    ap.add_argument("--runs", required=True, help="recipes.py's saved runs (<work>/experiments)")
    ap.add_argument("--name", required=True, help="the model's name in those runs (e.g. 'CE, no cosine beside it#12')")
    ap.add_argument("--test", nargs="+", default=[], help="collections whose test splits to read")
    ap.add_argument("--cosine", default=None, help="the cosine's model (default: the run's model.backbone)")
    args = ap.parse_args(argv)

    with open(os.path.join(args.run, "train_config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(args.run, "final", "validation.json")) as f:
        held = json.load(f)
    collection = open_dataset(held["dataset"], held["split"]).collection
    topics = pd.DataFrame(held["queries"])
    qrels = collection.get_qrels(held["split"])
    qrels = qrels[qrels["qid"].isin(set(topics["qid"]))]
    candidates = bm25_run(collection, topics, None, cfg["eval"]["k"])
    model = load_reranker(os.path.join(args.run, "final"))
    if model.prior is not None:
        raise SystemExit(f"--run {args.run}: its model already keeps a prior; pass a run trained without one")
    cosine = load_reranker(args.cosine or cfg["model"]["backbone"])
    both = model(candidates)[["qid", "docno", "score"]].merge(
        cosine(candidates)[["qid", "docno", "score"]], on=["qid", "docno"], suffixes=("", "_cos")
    )
    qids = list(topics["qid"])
    ratio = both["score"].std() / both["score_cos"].std()
    equal = equal_scale(both["score"], both["score_cos"], both["qid"])
    weights = [(f"α {a:.2f}", ratio * a / (1 - a)) for a in np.round(np.arange(0.0, 1.0, 0.05), 2)]
    weights.insert(0, ("equal_scale", equal))

    def summed(frame, lam):
        return frame.assign(score=frame["score"] + lam * frame["score_cos"])[["qid", "docno", "score"]]

    print(
        f"validation ({len(qids)} held-out queries of {held['dataset']}): cosine alone "
        f"{per_query(both.assign(score=both['score_cos']), qrels, qids).mean():.4f}"
    )
    for label, lam in weights:
        print(f"  {label:>12} (λ {lam:8.3f}): {per_query(summed(both, lam), qrels, qids).mean():.4f}")
    for name in args.test:
        test = open_dataset(name, "test")
        runs = saved_runs(
            os.path.join(args.runs, os.path.basename(os.path.normpath(name)), "runs"), [args.name, COSINE, BM25]
        )
        pairs = runs[args.name].merge(runs[COSINE], on=["qid", "docno"], suffixes=("", "_cos"))
        tq = sorted(set(runs[BM25]["qid"]) & set(test.qrels["qid"]))
        bm25, cos = per_query(runs[BM25], test.qrels, tq), per_query(runs[COSINE], test.qrels, tq)
        print(f"{name} test ({len(tq)} queries): BM25 {bm25.mean() * 100:.1f}, cosine {cos.mean() * 100:.1f}")
        for label, lam in weights:
            v = per_query(summed(pairs, lam), test.qrels, tq)
            print(
                f"  {label:>12}: {v.mean() * 100:.1f}  p vs BM25 {ttest_rel(v, bm25).pvalue:.3f}  "
                f"p vs cosine {ttest_rel(v, cos).pvalue:.3f}"
            )


if __name__ == "__main__":
    main()
