"""Figures as PNG.

    python experiments/figures.py masks --out figures/            # Figure 2: the attention policies
    python experiments/figures.py sweep fig3.csv --xlabel "first interaction layer ℓ*" --out fig3.png
    python experiments/figures.py sweep fig4.csv --xlabel "dropped layers" --out fig4.png
    python experiments/figures.py efficiency pyterrier_mice/pt_docs/results/efficiency_cpu.md --out figures/eff.png
    python experiments/figures.py pareto pyterrier_mice/pt_docs/results/pareto_cranfield.json --out fig.png

``sweep`` plots a CSV written by ``experiments/sweep.py`` (Figures 3 and 4: nDCG@10 against the
first interaction layer, or the dropped layers), averaged over its datasets (``--dataset MSM DL19
DL20`` for the paper's in-domain average), with BM25 and the source cross-encoder as reference
lines.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pyterrier_mice.models.policies import plot_policy  # noqa: E402

PAPER_MASKS = ["mask0", "mask1", "mask2", "mask3-4", "sparse_ce", "prettr-4"]


def masks(out: str, num_layers: int) -> list[str]:
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in PAPER_MASKS:
        path = os.path.join(out, f"mask_{name}.png")
        plt.close(plot_policy(name, num_layers, path))
        paths.append(path)
    return paths


def sweep(
    csv: str, out: str, x: str = "x", y: str = "nDCG@10", datasets: list[str] | None = None, xlabel: str | None = None
) -> str:
    """One line per swept ``family``, y averaged over the CSV's datasets (or ``datasets``);
    rows without ``x`` (BM25, the source cross-encoder) become horizontal reference lines."""
    df = pd.read_csv(csv)
    missing = {x, y, "model", "dataset"} - set(df.columns)
    if missing:
        raise ValueError(f"{csv}: missing column(s) {sorted(missing)}")
    if datasets:
        unknown = set(datasets) - set(df["dataset"])
        if unknown:
            raise ValueError(f"{csv}: no rows for dataset(s) {sorted(unknown)}")
        df = df[df["dataset"].isin(datasets)]
    n = df["dataset"].nunique()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    swept = df[df[x].notna()]
    family = swept["family"] if "family" in swept else swept["model"]
    for fam, g in swept.groupby(family, sort=False):
        g = g.groupby(x)[y].mean().sort_index()
        ax.plot(g.index, g.values, marker="o", label=fam)
    for i, (model, g) in enumerate(df[df[x].isna()].groupby("model", sort=False)):
        ax.axhline(g[y].mean(), ls="--", lw=1, color=f"C{i + 3}", label=model)
    ax.set_xlabel(xlabel or x.replace("_", " "))
    ax.set_ylabel(f"{y}" + (f" (mean of {n} datasets)" if n > 1 else f" ({df['dataset'].iloc[0]})"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def efficiency_rows(table_md: str) -> tuple[list[str], list[float], list[float], list[float]]:
    """Names, docs/s, speed-up and peak memory of each system in the first table
    ``benchmarks/efficiency.py`` prints (columns found by their header)."""
    header, rows = None, []
    for line in open(table_md, encoding="utf8"):
        if line.startswith("| system"):
            header = [c.strip() for c in line.split("|")[1:-1]]
        elif header and line.startswith("| "):
            rows.append([c.strip() for c in line.split("|")[1:-1]])
        elif rows and not line.startswith("|"):
            break  # the first table only (a profile table follows)
    if not rows:
        raise ValueError(f"{table_md}: no table rows (expected the output of benchmarks/efficiency.py)")
    memory_col = next(i for i, c in enumerate(header) if c.startswith("peak"))  # columns by name, not position
    names = [r[0] for r in rows]
    speed = [float(r[header.index("docs/s")]) for r in rows]
    ratio = [float(r[header.index("× cross-encoder")]) for r in rows]
    memory = [float(r[memory_col]) for r in rows]
    return names, speed, ratio, memory


def efficiency(table_md: str, out: str) -> str:
    """Documents per second of each system (log scale, labelled with the speed-up over the
    cross-encoder) beside its peak memory, from the first table ``benchmarks/efficiency.py`` prints."""
    names, speed, ratio, memory = efficiency_rows(table_md)
    fig, (ax, mem) = plt.subplots(
        1, 2, figsize=(10, 0.5 * len(names) + 1.2), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    bars = ax.barh(names[::-1], speed[::-1], color="tab:blue")
    for bar, s, r in zip(bars, speed[::-1], ratio[::-1]):
        ax.text(
            bar.get_width() * 1.08,
            bar.get_y() + bar.get_height() / 2,
            f"{s:g} docs/s ({r:.1f}×)",
            va="center",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlim(right=max(speed) * 12)
    ax.set_xlabel("documents / second (log scale); × the cross-encoder")
    mem.barh(names[::-1], memory[::-1], color="tab:orange")
    mem.set_xlabel("peak memory (MB)")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """The systems no other system beats on both axes (faster and at least as effective, or as fast
    and more effective), fastest first; ``points``: name → (ms per query, effectiveness)."""
    front, best = [], float("-inf")
    for name, (ms, score) in sorted(points.items(), key=lambda item: (item[1][0], -item[1][1])):
        if score > best:
            front.append(name)
            best = score
    return front


def pareto(points: dict[str, tuple[float, float]], out: str, ylabel: str = "nDCG@10", title: str = "") -> str:
    """Effectiveness against latency: each system a point (ms per query, log scale), the Pareto
    front drawn through the systems nothing beats on both axes, each point labelled."""
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, (ms, score) in points.items():
        on = name in front
        ax.scatter([ms], [score], s=36 if on else 22, color="tab:red" if on else "tab:blue", zorder=3)
        ax.annotate(name, (ms, score), textcoords="offset points", xytext=(5, 3), fontsize=7)
    xs, ys = zip(*(points[n] for n in front))
    ax.step(xs, ys, where="post", color="tab:red", alpha=0.6, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("mean response time, ms per query (log scale)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def schematic(model: str, out: str, weight: float | None = None) -> str:
    """The HTML schematic of ``bm25 % 100 >> get_text >> ScoreFusion(MICE)`` on Cranfield, with the
    MICE at ``model`` and the fusion weight its training chose (or ``weight``), drawn offline."""
    import pyterrier as pt
    import pyterrier.documentation

    from pyterrier_mice import MiceReranker, ScoreFusion
    from pyterrier_mice.evaluation.experiment import open_dataset
    from pyterrier_mice.evaluation.retrieval import bm25

    pyterrier.documentation._cached_objects_inv = {}  # no online lookup of PyTerrier's pages
    ds = open_dataset("cranfield", "test")
    mice = MiceReranker.from_pretrained(model)
    fusion = ScoreFusion(mice, weight) if weight is not None else ScoreFusion.from_pretrained(model, mice)
    pipeline = bm25(ds.collection) % 100 >> pt.text.get_text(ds.collection, "text") >> fusion
    html = pt.schematic.draw(pipeline)
    with open(out, "w", encoding="utf8") as f:
        f.write(html.replace(os.path.abspath(model), os.path.normpath(model)).replace(os.path.expanduser("~"), "~"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("masks")
    m.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyterrier_mice", "pt_docs", "figures"
        ),
        help="folder of the figures (default: the documentation's, pyterrier_mice/pt_docs/figures)",
    )
    m.add_argument("--layers", type=int, default=12)
    s = sub.add_parser("sweep")
    s.add_argument("csv", help="written by experiments/sweep.py")
    s.add_argument("--x", default="x", help="column for the x axis (x, first_interaction_layer, dropped_layers)")
    s.add_argument("--y", default="nDCG@10")
    s.add_argument("--dataset", nargs="*", help="average over these datasets only (e.g. MSM DL19 DL20)")
    s.add_argument("--xlabel")
    s.add_argument("--out", required=True)
    sc = sub.add_parser("schematic")
    sc.add_argument("model", help="a MICE checkpoint (e.g. runs/mice/final)")
    sc.add_argument("--weight", type=float, help="the fusion weight (default: the one its training chose)")
    sc.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            "pyterrier_mice",
            "pt_docs",
            "figures",
            "fusion_schematic.html",
        ),
    )
    e = sub.add_parser("efficiency")
    e.add_argument("table")
    e.add_argument("--out", required=True)
    pa = sub.add_parser("pareto")
    pa.add_argument("results", help="written by benchmarks/pareto.py (--json)")
    pa.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "masks":
        print("\n".join(masks(args.out, args.layers)))
    elif args.cmd == "sweep":
        print(sweep(args.csv, args.out, args.x, args.y, args.dataset, args.xlabel))
    elif args.cmd == "schematic":
        print(schematic(args.model, args.out, args.weight))
    elif args.cmd == "pareto":
        import json

        with open(args.results, encoding="utf8") as f:
            saved = json.load(f)
        points = {r["system"]: (r["ms_per_query"], r["nDCG@10"]) for r in saved["systems"]}
        print(pareto(points, args.out, title=saved.get("title", "")))
    else:
        print(efficiency(args.table, args.out))


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
