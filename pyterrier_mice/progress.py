"""Progress bars on long work (training steps, teacher scoring, validation, indexing, re-ranking):
PyTerrier's tqdm, on stderr, shown once the work has taken a second (quick work and work that fails
at once print nothing), silenced for the whole process by ``PYTERRIER_MICE_PROGRESS=0``."""

from __future__ import annotations

import os


def enabled() -> bool:
    """Whether progress bars are shown (``PYTERRIER_MICE_PROGRESS=0`` silences them)."""
    return os.environ.get("PYTERRIER_MICE_PROGRESS", "1") not in ("0", "false", "no")


def bar(total: int | None = None, desc: str = "", unit: str = "it", **kwargs):
    """A progress bar (``pt.tqdm``: the notebook's widget in a notebook), or None when silenced."""
    if not enabled():
        return None
    import pyterrier as pt

    return pt.tqdm(total=total, desc=desc, unit=unit, mininterval=1.0, delay=kwargs.pop("delay", 1.0), **kwargs)


def close_all() -> None:
    """Close every progress bar still open (an error is about to be printed: its line must be the last)."""
    import pyterrier as pt

    for open_bar in list(getattr(pt.tqdm, "_instances", [])):  # tqdm's set of open bars
        open_bar.close()
