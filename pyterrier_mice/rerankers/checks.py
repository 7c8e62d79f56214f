"""What a re-ranker refuses, each in one line: a frame without its text column (PyTerrier's validation
error), a candidate given twice, a text that is not valid Unicode, and a score that is not a finite number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyterrier as pt


class MissingTextColumn(pt.validate.InputValidationError, ValueError):
    """A re-ranker's input without its text column: PyTerrier's validation error (``pt.inspect``
    reads its modes), printed as one line that names ``pt.text.get_text``."""

    def __str__(self):
        return self.args[0]


def refuse_duplicates(frame: pd.DataFrame, who: str, what_to_do: str) -> None:
    """Raise one line naming ``who``, how many (qid, docno) rows are repeats and the first, and
    ``what_to_do``, unless each candidate of ``frame`` appears once."""
    dup = frame.duplicated(["qid", "docno"])
    if dup.any():
        row = frame.loc[dup].iloc[0]
        raise ValueError(
            f"{who}: {int(dup.sum())} duplicate (qid, docno) row(s), e.g. qid={row['qid']!r}, "
            f"docno={row['docno']!r}; {what_to_do}"
        )


class NonFiniteScore(ValueError):
    """A score that is NaN or infinite, from a model or from the first stage."""


def check_finite(scores, frame: pd.DataFrame, who: str, what: str) -> None:
    """Raise :class:`NonFiniteScore` naming ``who``, the first such row's qid and docno, and what to do,
    unless every score of ``frame``'s rows (aligned with ``scores``) is a finite number. ``what`` says
    where the scores come from and what to check."""
    values = np.asarray(scores, dtype=np.float64)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    row = frame.iloc[i]
    more = f" (and {int(bad.sum()) - 1} more row(s))" if bad.sum() > 1 else ""
    raise NonFiniteScore(
        f"{who}: {what} {values[i]} for qid={row['qid']!r}, docno={row['docno']!r}{more}; no ranking is made of it"
    )


def first_invalid_text(texts: pd.Series) -> int | None:
    """The position of the first text that is not valid Unicode (a lone surrogate, which no tokenizer
    reads), or None."""
    try:
        "".join(texts).encode("utf8")
        return None
    except UnicodeEncodeError:
        pass
    for i, t in enumerate(texts):
        try:
            t.encode("utf8")
        except UnicodeEncodeError:
            return i
    return None
