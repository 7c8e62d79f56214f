"""Like-for-like training comparison: variants of one training config, each trained with the
same recipe and budget for several seeds, their learning curves (validation measure against
steps) and their final checkpoints on a test split in one ``pt.Experiment`` (↑/↓ against BM25).

    python experiments/compare_training.py --config pyterrier_mice/configs/cranfield_mice.yaml \\
        --set model.backbone=$M --variant none=model.cls_cross_attention=none \\
        --variant mean=model.cls_cross_attention=mean --seeds 1 2 \\
        --dataset cranfield --split test --k 50 --out experiments/results/cls_modes

``--variant NAME=KEY=VALUE[,KEY=VALUE…]`` (repeatable) adds overrides to the config; each
variant × seed trains in ``--work/NAME-sSEED`` (a finished run under the same config is reused,
an interrupted one resumes; with a teacher, its scores are cached once in ``--work/teacher``
for every variant on the same data). ``--untrained-from CE`` also evaluates every variant's model built
from the cross-encoder checkpoint CE without training (its head kept). ``--reference NAME=RUN``
(repeatable) adds a finished run trained elsewhere (e.g. the teacher cross-encoder): its curve is
drawn and its final checkpoint joins the test table. ``--against NAME`` (repeatable; a variant or a
reference, default the first reference) adds a table marking every system against NAME, e.g. the
derived variant against the one trained from the base model. Writes ``OUT_curves.csv``
(variant, seed, step, validation), ``OUT_test.csv`` (per seed), ``OUT.md`` (the table) and the
figure ``pyterrier_mice/pt_docs/figures/<name of OUT>.png`` (curves, mean over seeds with the per-seed
runs faint; the documentation shows it from there).
"""

import argparse
import csv
import json
import os
import warnings

import numpy as np

from pyterrier_mice.evaluation import paper_table, per_query, pool_repetitions, to_markdown
from pyterrier_mice.evaluation.experiment import open_dataset, rerank_experiment, saved_fusions, system_identity
from pyterrier_mice import load_reranker
from pyterrier_mice.training import TrainConfig, build_reranker, run


#: where the documentation's figures live (pyterrier_mice/pt_docs/figures: the pages show them from there)
DOCS_FIGURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyterrier_mice", "pt_docs", "figures"
)


def parse_variant(spec: str) -> tuple[str, list[str]]:
    name, sep, sets = spec.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant {spec!r}: expected NAME=KEY=VALUE[,KEY=VALUE…] (or NAME= for the config as is)")
    return name, [s for s in sets.split(",") if s]


def train_all(args, variants) -> dict:
    """(variant, seed) → output_dir, each trained (or reused) with the shared recipe."""
    out = {}
    for name, sets in variants:
        for seed in args.seeds:
            output_dir = os.path.join(args.work, f"{name}-s{seed}")
            cfg = TrainConfig.from_yaml(args.config, [*args.set, *sets, f"seed={seed}", f"output_dir={output_dir}"])
            if cfg.data.teacher and cfg.data.teacher_cache is None:  # variants on the same data: scored once
                cfg.data.teacher_cache = os.path.join(args.work, "teacher")
            print(f"== {name} seed {seed}: {output_dir}", flush=True)
            run(cfg, overwrite=args.overwrite)
            out[(name, seed)] = output_dir
    return out


def curves(runs: dict) -> list[dict]:
    """Validation points of every run (``val``; ``val_fused``: fused with BM25 at the weight chosen
    there; ``val_model``: the model without the prior kept beside it, ``model.prior_scale: equal``),
    from a finished run's ``trainer.json`` (or an older run's checkpoint)."""
    rows = []
    for (name, seed), output_dir in runs.items():
        path = os.path.join(output_dir, "trainer.json")
        if not os.path.exists(path):
            path = os.path.join(output_dir, "checkpoint", "trainer.json")
        with open(path) as f:
            history = json.load(f)["history"]
        rows += [
            {
                "variant": name,
                "seed": seed,
                "step": h["step"],
                "val": h["val"],
                "val_fused": h.get("val_fused", ""),
                "val_model": h.get("val_model", ""),
                "val_ood": h.get("val_ood", ""),
            }
            for h in history
            if "val" in h
        ]
    return rows


def plot_curves(rows: list[dict], measure: str, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, name in enumerate(dict.fromkeys(r["variant"] for r in rows)):
        color = f"C{i}"
        mine = [r for r in rows if r["variant"] == name]
        steps = sorted({r["step"] for r in mine})
        by_seed = {}
        for r in mine:
            by_seed.setdefault(r["seed"], {})[r["step"]] = r["val"]
        for seed_curve in by_seed.values():
            ax.plot(sorted(seed_curve), [seed_curve[s] for s in sorted(seed_curve)], color=color, alpha=0.25, lw=1)
        mean = [np.mean([c[s] for c in by_seed.values() if s in c]) for s in steps]
        ax.plot(
            steps,
            mean,
            color=color,
            lw=2,
            marker="o",
            ms=3,
            label=name if len(by_seed) == 1 else f"{name} (mean of {len(by_seed)} seeds)",
        )
        for key, style, what in [("val_fused", "--", "fused with BM25"), ("val_model", ":", "without the cosine")]:
            points = [
                np.mean([r[key] for r in mine if r["step"] == s and r.get(key, "") != ""] or [np.nan]) for s in steps
            ]
            if not all(np.isnan(points)):
                ax.plot(steps, points, color=color, lw=1.5, ls=style, label=f"{name}, {what}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"validation {measure}")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], help="override for every variant (KEY=VALUE)")
    ap.add_argument("--variant", action="append", required=True, help="NAME=KEY=VALUE[,KEY=VALUE…]")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--reference",
        action="append",
        default=[],
        help="NAME=RUN_DIR: a finished run to draw and evaluate beside the variants (not trained)",
    )
    ap.add_argument("--untrained-from", help="also evaluate each variant built from this cross-encoder, untrained")
    ap.add_argument(
        "--dataset", default="cranfield", help="a BEIR-layout folder or irds:<id> (default: the bundled cranfield)"
    )
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--measure", default="nDCG@10")
    ap.add_argument("--work", default="runs/compare")
    ap.add_argument("--out", required=True, help="prefix of the CSV/Markdown/PNG outputs")
    ap.add_argument(
        "--against",
        action="append",
        default=[],
        help="also mark every system against this variant or reference (default: the first reference)",
    )
    ap.add_argument("--overwrite", action="store_true", help="retrain runs that exist")
    ap.add_argument(
        "--fusion",
        action="store_true",
        help="also each final checkpoint fused with BM25 at the weight its training chose (NAME + BM25)",
    )
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated.*")
    variants = [parse_variant(v) for v in args.variant]

    references = dict(r.split("=", 1) for r in args.reference)
    against = args.against or list(references)[:1]
    unknown = [a for a in against if a not in references and a not in dict(variants)]
    if unknown:
        raise SystemExit(
            f"--against {unknown[0]!r}: not a --variant or --reference name "
            f"(have {[n for n, _ in variants] + list(references)})"
        )
    runs = train_all(args, variants)
    rows = curves({**runs, **{(name, 0): path for name, path in references.items()}})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + "_curves.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["variant", "seed", "step", "val", "val_fused", "val_model", "val_ood"])
        w.writeheader()
        w.writerows(rows)

    systems, paths = {}, {}
    for (name, seed), output_dir in runs.items():
        paths[f"{name}#{seed}"] = os.path.join(output_dir, "final")
    for name, output_dir in references.items():
        paths[name] = os.path.join(output_dir, "final")
    for name, path in paths.items():
        rr = load_reranker(path, batch_size=64)
        systems[name] = (rr, system_identity(rr, path))
    if args.untrained_from:
        for name, sets in variants:
            cfg = TrainConfig.from_yaml(args.config, [*args.set, *sets, f"model.backbone={args.untrained_from}"])
            rr = build_reranker(cfg.model, batch_size=64)
            systems[f"{name} (untrained from CE)"] = (
                rr,
                system_identity(rr, args.untrained_from, "untrained", json.dumps(cfg.model.__dict__, default=str)),
            )
    ds = open_dataset(args.dataset, args.split)
    fusions = saved_fusions(paths) if args.fusion else {}
    res = rerank_experiment(ds, systems, k=args.k, work=os.path.join(args.work, "experiments"), fusions=fusions)
    values = per_query(res, args.measure)
    with open(args.out + "_test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "seed", args.measure])
        for system in values.columns:
            name, _, seed = system.partition("#")
            w.writerow([name, seed, round(float(values[system].mean()), 4)])
    pooled = pool_repetitions(res)
    table = paper_table({ds.label: pooled}, args.measure, "BM25")
    seeded = [name for name, _ in variants] + [f"{name} + BM25" for name, _ in variants if args.fusion]
    per_seed = {
        name: [float(values[f"{name}#{s}"].mean()) * 100 for s in args.seeds if f"{name}#{s}" in values]
        for name in seeded
    }
    table["per seed"] = [", ".join(f"{v:.1f}" for v in per_seed[n]) if n in per_seed else "" for n in table.index]
    table["sd over seeds"] = [
        f"{np.std(per_seed[n], ddof=1):.1f}" if len(per_seed.get(n, [])) > 1 else "" for n in table.index
    ]
    last = {}
    for r in rows:
        if r["step"] == max(x["step"] for x in rows if x["variant"] == r["variant"]):
            last.setdefault(r["variant"], []).append(r["val"] * 100)
            if r["val_fused"] != "":
                last.setdefault(f"{r['variant']} + BM25", []).append(r["val_fused"] * 100)
    table["final validation"] = [f"{np.mean(last[n]):.1f}" if n in last else "" for n in table.index]
    header = (
        f"{args.measure} (×100) on {ds.label} {args.split}, BM25 top-{args.k} re-ranked; each variant's final "
        f"checkpoint, mean over seeds {args.seeds} (per-query values averaged over seeds before the paired "
        f"t-test against BM25, Holm; ↑/↓ significant); final validation: last point of the curves"
    )
    text = header + "\n\n" + to_markdown(table) + "\n"
    for name in against:
        text += (
            f"\nThe same systems, ↑/↓ against {name} (paired t-test, Holm):\n\n"
            + to_markdown(paper_table({ds.label: pooled}, args.measure, name))
            + "\n"
        )
    with open(args.out + ".md", "w") as f:
        f.write(text)
    print("\n" + text)
    plot_curves(
        rows,
        TrainConfig.from_yaml(args.config, args.set).eval.measure,
        os.path.join(DOCS_FIGURES, os.path.basename(args.out) + ".png"),
        f"{os.path.basename(args.config)}: validation during training",
    )
    return table


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
