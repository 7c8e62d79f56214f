"""Layer 4, evaluation: test collections (BEIR folders, the bundled Cranfield, ir_datasets), the BM25
first stage (PISA), the paper's experiment layout with saved runs, and its tables with significance
marks (:mod:`.tables`, whose functions are also importable from here).

Imports nothing of the package but :mod:`pyterrier_mice.models` (never re-rankers, index or training:
they are passed in)."""

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
