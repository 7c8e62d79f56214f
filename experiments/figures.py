"""Figures as PNG.

    python experiments/figures.py masks --out figures/            # Figure 2: the attention policies
    python experiments/figures.py sweep results.csv --x first_interaction_layer --out figures/fig3.png
    python experiments/figures.py sweep results.csv --x dropped_layers --out figures/fig4.png
    python experiments/figures.py efficiency benchmarks/results/efficiency_cpu.md --out figures/eff.png

``sweep`` plots nDCG@10 (column ``ndcg``) against a column ``--x`` with one line per ``model``
(Figures 3 and 4: first interaction layer, dropped layers), from a CSV of results.
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pyterrier_mice.policies import plot_policy  # noqa: E402

PAPER_MASKS = ["mask0", "mask1", "mask2", "mask3-4", "sparse_ce", "prettr-4"]


def masks(out: str, num_layers: int) -> list[str]:
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in PAPER_MASKS:
        path = os.path.join(out, f"mask_{name}.png")
        plt.close(plot_policy(name, num_layers, path))
        paths.append(path)
    return paths


def sweep(csv: str, x: str, out: str, y: str = "ndcg") -> str:
    df = pd.read_csv(csv)
    missing = {x, y, "model"} - set(df.columns)
    if missing:
        raise ValueError(f"{csv}: missing column(s) {sorted(missing)}")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for model, g in df.groupby("model"):
        g = g.sort_values(x)
        ax.plot(g[x], g[y], marker="o", label=model)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("nDCG@10")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    return out


def efficiency(table_md: str, out: str) -> str:
    rows = [l for l in open(table_md, encoding="utf8") if l.startswith("| ") and not l.startswith("| system")]
    names = [r.split("|")[1].strip() for r in rows]
    speed = [float(r.split("|")[4]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1))
    ax.barh(names[::-1], speed[::-1], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("documents / second (log)")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("masks")
    m.add_argument("--out", default="figures")
    m.add_argument("--layers", type=int, default=12)
    s = sub.add_parser("sweep")
    s.add_argument("csv")
    s.add_argument("--x", required=True)
    s.add_argument("--out", required=True)
    e = sub.add_parser("efficiency")
    e.add_argument("table")
    e.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "masks":
        print("\n".join(masks(args.out, args.layers)))
    elif args.cmd == "sweep":
        print(sweep(args.csv, args.x, args.out))
    else:
        print(efficiency(args.table, args.out))


if __name__ == "__main__":
    main()
