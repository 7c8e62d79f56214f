"""Writing files and folders whole or not at all, and the locks that keep two processes from
building the same thing at once.

- :func:`atomic_path` / :func:`atomic_file` / :func:`write_json`: a file written under a temporary
  name beside it and renamed into place when complete;
- :func:`replaced_whole`: a folder written as ``<path>.building`` and swapped in when complete (the
  previous one kept until then); :func:`recover_replaced` puts it back if a process died between
  the two renames;
- :func:`remove_whole`: a folder removed so that a kill meanwhile leaves all of it or none of it;
- :func:`locked`: a cross-process lock for a path (beside it, or in the system's temporary folder);
- :func:`cache_dir`: where the package keeps what every run shares (BM25 indexes, a teacher's
  embeddings): ``$PYTERRIER_MICE_CACHE``, by default ``~/.cache/pyterrier_mice``;
- a full disk is one :class:`OSError` line that names the path and says "no space"; what is written
  is readable as the umask allows (some writers create files for their owner only).
"""

from __future__ import annotations

import contextlib
import errno as errnos
import hashlib
import json
import os
import re
import shutil
import tempfile

#: suffixes of a folder being written by :func:`replaced_whole`, of the one it replaces, and of one
#: being removed by :func:`remove_whole`
BUILDING, OLD, REMOVING = ".building", ".old", ".removing"
#: errno values of a full disk (or a file-size limit): ENOSPC, EDQUOT, EFBIG
NO_SPACE = (errnos.ENOSPC, errnos.EDQUOT, errnos.EFBIG)


def cache_dir(name: str) -> str:
    """The folder ``name`` of the package's shared cache: ``$PYTERRIER_MICE_CACHE/<name>`` (default
    ``~/.cache/pyterrier_mice/<name>``)."""
    root = os.environ.get("PYTERRIER_MICE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pyterrier_mice")
    return os.path.join(root, name)


def no_space_errno(exc: BaseException) -> int | None:
    """The errno of a write that failed for want of space (an ``OSError``, or a writer in another
    language reporting ``(os error N)``, as safetensors does), else None."""
    if isinstance(exc, OSError):
        return exc.errno if exc.errno in NO_SPACE else None
    m = re.search(r"os error (\d+)", str(exc))
    return int(m.group(1)) if m and int(m.group(1)) in NO_SPACE else None


def no_space_error(exc: BaseException, path: str) -> OSError | None:
    """One line for a write of ``path`` that failed for want of space, or None for any other failure."""
    errno = no_space_errno(exc)
    if errno is None:
        return None
    return OSError(
        errno, f"{path}: no space left to write it ({os.strerror(errno)}); the previous one, if any, is intact"
    )


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def readable_as_umask_allows(path: str) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the modes the umask allows."""
    mask = current_umask()
    if not os.path.isdir(path):
        os.chmod(path, 0o666 & ~mask)
        return
    for root, dirs, names in os.walk(path):
        os.chmod(root, 0o777 & ~mask)
        for name in names:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary file name beside ``path`` (ending as ``path`` ends, so that writers that
    choose a format by the extension, such as ``pt.io.write_results``, choose the same one); once the
    block has written it, it replaces ``path``. On a failure ``path`` is left as it was and the
    temporary file removed; a full disk is one line (see :func:`no_space_error`)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        yield tmp
        readable_as_umask_allows(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        full = no_space_error(e, path)
        if full is not None:
            raise full from None
        raise


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w"):
    """An open file that replaces ``path`` when the block ends without error (see :func:`atomic_path`);
    text is UTF-8."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf8"})) as f:
            yield f


def write_json(path: str, obj, **dump_kwargs) -> None:
    """``obj`` as JSON in ``path``, written whole (``dump_kwargs``: ``json.dump``'s, default ``indent=1``)."""
    with atomic_file(path) as f:
        json.dump(obj, f, **{"indent": 1, **dump_kwargs})


def write_text(path: str, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text)


def save_npy(path: str, array) -> None:
    """``np.save`` of ``array`` into ``path`` (ending ``.npy``), written whole."""
    import numpy as np

    with atomic_file(path, "wb") as f:
        np.save(f, array)


def recover_replaced(path: str) -> bool:
    """Put back the previous ``path`` that a process killed between :func:`replaced_whole`'s two renames
    left as ``<path>.old`` (only when ``path`` is missing); True if it did."""
    if os.path.exists(path) or not os.path.isdir(path + OLD):
        return False
    os.replace(path + OLD, path)
    return True


@contextlib.contextmanager
def replaced_whole(path: str, *, main: bool = True):
    """Write the folder ``path`` whole or not at all: the block writes into ``<path>.building`` (yielded;
    a stale one is removed first), which then replaces ``path`` (the previous one renamed to
    ``<path>.old``, then removed). On a failure ``path`` is left as it was; a full disk is one line.
    Under a distributed launch every process may write into the folder, and only the ``main`` one
    prepares, swaps and cleans it."""
    path = os.fspath(path)
    tmp = path + BUILDING
    if main:
        recover_replaced(path)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    try:
        yield tmp
    except BaseException as e:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        full = no_space_error(e, path)
        if full is not None:
            raise full from None
        raise
    if main:
        readable_as_umask_allows(tmp)
        if os.path.exists(path):
            shutil.rmtree(path + OLD, ignore_errors=True)
            os.replace(path, path + OLD)
        os.replace(tmp, path)
        shutil.rmtree(path + OLD, ignore_errors=True)


def remove_whole(path: str) -> None:
    """Remove the folder ``path`` so that a process killed meanwhile leaves either all of it or none of
    it under its name: it is renamed to ``<path>.removing`` first, then deleted."""
    path = os.fspath(path)
    gone = path + REMOVING
    shutil.rmtree(gone, ignore_errors=True)
    if os.path.exists(path):
        os.replace(path, gone)
    shutil.rmtree(gone, ignore_errors=True)


class Busy(TimeoutError):
    """Another process holds the lock of a path."""


@contextlib.contextmanager
def locked(path: str, wait: bool | float = True, *, beside: bool = False):
    """Hold the cross-process lock of ``path`` for the block. ``wait``: block until it is free (True),
    fail at once (False), or wait that many seconds, then raise :class:`Busy`. The lock file is
    ``<path>.lock`` with ``beside`` (seen by every machine that shares the folder), else in the system's
    temporary folder (the guarded folder then holds only what it stores)."""
    import filelock

    path = os.path.abspath(os.fspath(path))
    if beside:
        lock_file = path + ".lock"
    else:
        digest = hashlib.sha1(path.encode()).hexdigest()[:16]
        lock_file = os.path.join(tempfile.gettempdir(), f"pyterrier_mice-{digest}.lock")
    lock = filelock.FileLock(lock_file)
    try:
        lock.acquire(timeout=-1 if wait is True else (0 if wait is False else float(wait)))
    except filelock.Timeout:
        raise Busy(f"{path} is being written by another process (its lock {lock_file} is held)") from None
    try:
        yield
    finally:
        lock.release()
