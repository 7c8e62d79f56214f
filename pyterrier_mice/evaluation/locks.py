"""Cross-process locks for files built once and shared by runs (BM25 indexes, teacher scores), kept
in the system's temporary folder so that the guarded folders hold only what they store.

Evaluation layer: imports no other module of the package."""

from __future__ import annotations

import hashlib
import os
import tempfile


def path_lock(path: str, timeout: float = -1):
    """A ``filelock.FileLock`` for ``path`` (two processes building it: one builds, the other waits)."""
    import filelock

    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    return filelock.FileLock(os.path.join(tempfile.gettempdir(), f"pyterrier_mice-{digest}.lock"), timeout=timeout)
