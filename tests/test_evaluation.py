"""The paper-table helpers: significance marks, corrections, averages, Markdown/LaTeX."""

import numpy as np
import pandas as pd
import pytest

from pyterrier_mice.evaluation import paper_table, significance, to_latex, to_markdown


def perquery(values: dict[str, list[float]], measure="nDCG@10"):
    rows = [
        {"name": n, "qid": str(i), "measure": measure, "value": v} for n, vs in values.items() for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_marks_and_correction():
    rng = np.random.RandomState(0)
    base = rng.uniform(0.2, 0.6, 40)
    noise = rng.normal(0, 0.01, 40)
    values = pd.DataFrame(
        {"BM25": base, "better": base + 0.2, "worse": base - 0.2, "same": base + noise - noise.mean()}
    )  # no mean difference
    sig = significance(values, "BM25")
    assert sig.loc["better", "mark"] == "↑" and sig.loc["worse", "mark"] == "↓"
    assert sig.loc["same", "mark"] == "" and sig.loc["BM25", "mark"] == ""
    assert np.isnan(sig.loc["BM25", "p"])
    assert (sig["p_corrected"].dropna() >= sig["p"].dropna()).all()
    welch = significance(values, "BM25", test="welch", correction=None)
    assert welch.loc["better", "mark"] == "↑"
    with pytest.raises(ValueError, match="baseline 'nope'"):
        significance(values, "nope")


def test_paper_table_layout():
    rng = np.random.RandomState(1)
    b = rng.uniform(0.2, 0.6, 30)
    res = {
        "dl19": perquery({"BM25": list(b), "MICE": list(b + 0.1)}),
        "scifact": perquery({"BM25": list(b), "MICE": list(b - 0.1)}),
    }
    table = paper_table(res, "nDCG@10", "BM25", {"ID": ["dl19"], "OOD": ["scifact"], "hard": ["scifact", "arguana"]})
    assert list(table.columns) == ["dl19", "scifact", "ID avg", "OOD avg", "hard avg (1/2)"]
    assert table.loc["MICE", "dl19"].endswith("↑") and table.loc["MICE", "scifact"].endswith("↓")
    md, tex = to_markdown(table), to_latex(table)
    assert "| MICE |" in md and r"$^\uparrow$" in tex and tex.startswith(r"\begin{tabular}")


def test_pool_repetitions_and_system_order():
    from pyterrier_mice.evaluation import per_query, pool_repetitions

    res = perquery({"ZZ": [0.5, 0.7], "M#1": [0.2, 0.4], "M#2": [0.4, 0.6]})
    pooled = pool_repetitions(res)
    values = per_query(pooled, "nDCG@10")
    assert list(values.columns) == ["ZZ", "M"]
    assert values["M"].tolist() == pytest.approx([0.3, 0.5])
    with pytest.raises(ValueError, match="measure 'AP' not in the results"):
        per_query(res, "AP")


def test_latex_header_spans():
    table = pd.DataFrame({"DL19": ["70.1↑"], "SF": ["60.0"], "ID avg": ["70.1"]}, index=["MICE"])
    tex = to_latex(table, [("In-domain", 1), ("BEIR (OOD)", 1), ("Average", 1)])
    assert r"\cmidrule(lr){2-2}\cmidrule(lr){3-3}\cmidrule(lr){4-4}" in tex and "BEIR (OOD)" in tex
    with pytest.raises(ValueError, match="spans cover 2 columns; the table has 3"):
        to_latex(table, [("In-domain", 2)])
