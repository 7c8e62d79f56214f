"""Evaluation: test collections (BEIR folders, the bundled Cranfield, ir_datasets), the BM25
first stage (PISA), the paper's experiment layout with saved runs, and its tables with significance
marks (:mod:`.tables`, whose functions are also importable from here)."""

from .tables import TESTS, paper_table, per_query, pool_repetitions, significance, to_latex, to_markdown, verdicts

__all__ = [
    "TESTS",
    "paper_table",
    "per_query",
    "pool_repetitions",
    "significance",
    "to_latex",
    "to_markdown",
    "verdicts",
]
