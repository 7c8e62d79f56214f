"""The paper's table layout: a measure per dataset and system, group averages, and ↑/↓ marks from
significance tests against a baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

TESTS = ("t", "welch", "wilcoxon")


def per_query(res: pd.DataFrame, measure: str) -> pd.DataFrame:
    """``pt.Experiment(..., perquery=True)`` output → ``qid × system`` values of one measure."""
    sub = res[res["measure"] == measure]
    if sub.empty:
        raise ValueError(f"measure {measure!r} not in the results; measures: {sorted(res['measure'].unique())}")
    table = sub.pivot_table(index="qid", columns="name", values="value", aggfunc="first")
    return table[list(pd.unique(sub["name"]))]  # systems in their order in the experiment


def pool_repetitions(res: pd.DataFrame, sep: str = "#") -> pd.DataFrame:
    """Averages the per-query values of repetitions of a system (e.g. seeds) named ``name#1``,
    ``name#2``, … into one system ``name``, as the paper does before testing."""
    out = res.copy()
    out["name"] = out["name"].astype(str).str.replace(rf"{sep}\d+$", "", regex=True)
    keys = [c for c in ("name", "qid", "measure") if c in out.columns]
    return out.groupby(keys, as_index=False, sort=False)["value"].mean()


def significance(
    values: pd.DataFrame, baseline: str, test: str = "t", correction: str | None = "holm", alpha: float = 0.05
) -> pd.DataFrame:
    """Per system: mean, p-value against ``baseline``, corrected p-value and mark (↑, ↓ or '')."""
    if test not in TESTS:
        raise ValueError(f"test={test!r}; expected one of {TESTS}")
    if baseline not in values.columns:
        raise ValueError(f"baseline {baseline!r} not among the systems {list(values.columns)}")
    base = values[baseline]
    rows = []
    for name in values.columns:
        v = values[name]
        if name == baseline:
            p = np.nan
        elif test == "t":
            p = stats.ttest_rel(v, base, nan_policy="omit").pvalue
        elif test == "welch":
            p = stats.ttest_ind(v, base, equal_var=False, nan_policy="omit").pvalue
        else:
            diff = (v - base).dropna()
            p = stats.wilcoxon(diff).pvalue if (diff != 0).any() else 1.0
        rows.append({"name": name, "mean": float(v.mean()), "p": float(p) if p == p else np.nan})
    out = pd.DataFrame(rows).set_index("name")
    tested = out["p"].notna() & out.index.to_series().ne(baseline)
    out["p_corrected"] = out["p"]
    if correction and tested.sum():
        out.loc[tested, "p_corrected"] = multipletests(
            out.loc[tested, "p"].fillna(1.0), alpha=alpha, method=correction
        )[1]
    base_mean = out.loc[baseline, "mean"]
    out["mark"] = [
        ("↑" if m > base_mean else "↓") if (pc == pc and pc < alpha) else ""
        for m, pc in zip(out["mean"], out["p_corrected"])
    ]
    return out


def paper_table(
    results: dict[str, pd.DataFrame],
    measure: str,
    baseline: str,
    groups: dict[str, list[str]] | None = None,
    test: str = "t",
    correction: str | None = "holm",
    scale: float = 100.0,
) -> pd.DataFrame:
    """``results``: dataset → ``pt.Experiment(perquery=True)`` frame. Returns a systems × datasets
    table of strings like ``'42.1↑'`` plus one column per group average (e.g. ``ID``, ``OOD``),
    over the group's members that were run; a group only partly run is headed ``name avg (n/m)``."""
    cells, means = {}, {}
    for ds, res in results.items():
        sig = significance(per_query(res, measure), baseline, test, correction)
        means[ds] = sig["mean"] * scale
        cells[ds] = [f"{m * scale:.1f}{mark}" for m, mark in zip(sig["mean"], sig["mark"])]
    mean_df = pd.DataFrame(means)
    table = pd.DataFrame(cells, index=mean_df.index)
    for group, members in (groups or {}).items():
        present = [m for m in members if m in mean_df.columns]
        if present:
            label = f"{group} avg" + ("" if len(present) == len(members) else f" ({len(present)}/{len(members)})")
            table[label] = mean_df[present].mean(axis=1).map(lambda x: f"{x:.1f}")
    return table


def to_markdown(table: pd.DataFrame) -> str:
    cols = ["system", *table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join([str(i), *map(str, r)]) + " |" for i, r in zip(table.index, table.values)]
    return "\n".join(lines)


def to_latex(table: pd.DataFrame, spans: list[tuple[str, int]] | None = None) -> str:
    """A booktabs ``tabular``; ``spans`` (label, number of consecutive columns) adds the paper's
    header row over column groups, e.g. ``[("In-domain", 3), ("BEIR (OOD)", 13), ("Average", 3)]``."""
    esc = lambda s: (
        str(s)
        .replace("_", r"\_")
        .replace("&", r"\&")
        .replace("%", r"\%")
        .replace("↑", r"$^\uparrow$")
        .replace("↓", r"$^\downarrow$")
    )
    lines = [r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule"]
    if spans:
        if sum(n for _, n in spans) != len(table.columns):
            raise ValueError(f"spans cover {sum(n for _, n in spans)} columns; the table has {len(table.columns)}")
        heads, rules, col = [""], [], 2
        for label, n in spans:
            heads.append(rf"\multicolumn{{{n}}}{{c}}{{{esc(label)}}}" if n > 1 else esc(label))
            if label:
                rules.append(rf"\cmidrule(lr){{{col}-{col + n - 1}}}")
            col += n
        lines += [" & ".join(heads) + r" \\", "".join(rules)]
    lines += [" & ".join(["system", *map(esc, table.columns)]) + r" \\", r"\midrule"]
    lines += [" & ".join([esc(i), *map(esc, r)]) + r" \\" for i, r in zip(table.index, table.values)]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])


def verdicts(res: pd.DataFrame, measure: str = "nDCG@10") -> str:
    """What beats what, in words, from a ``pt.Experiment`` table run with ``baseline=0``: the best
    system, then each system against the baseline (the first row), better or worse, and whether
    significantly (its ``reject`` column, after the table's correction)."""
    base = res.iloc[0]
    best = res.loc[res[measure].idxmax()]
    lines = [
        f"{measure}: {best['name']} ranks best ({best[measure]:.3f}); against {base['name']} ({base[measure]:.3f}):"
    ]
    p_col = f"{measure} p-value corrected" if f"{measure} p-value corrected" in res else f"{measure} p-value"
    for _, row in res.iloc[1:].iterrows():
        diff = row[measure] - base[measure]
        word = "better than" if diff > 0 else "worse than" if diff < 0 else "as good as"
        how = "significantly" if bool(row[f"{measure} reject"]) else "not significantly"
        lines.append(f"- {row['name']}: {row[measure]:.3f}, {how} {word} {base['name']} (p = {row[p_col]:.3f})")
    return "\n".join(lines)
