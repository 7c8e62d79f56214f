"""Where re-ranking time goes: named sections (tokenise, lookup, read, encode, interaction, …)
timed when a recording is active, at no cost otherwise."""

from __future__ import annotations

import contextlib
import time

_ACTIVE: "Profile | None" = None


class Profile:
    def __init__(self, synchronize=None):
        self.inclusive: dict[str, float] = {}
        self.children: dict[str, float] = {}
        self._stack: list[str] = []
        self._sync = synchronize

    def exclusive(self) -> dict[str, float]:
        """Seconds per section, time spent in nested sections excluded."""
        return {k: v - self.children.get(k, 0.0) for k, v in self.inclusive.items()}


@contextlib.contextmanager
def recording(device=None):
    """Record sections within this block (synchronising CUDA around each on a CUDA ``device``)."""
    global _ACTIVE
    import torch

    sync = torch.cuda.synchronize if device is not None and str(device).startswith("cuda") else None
    previous, _ACTIVE = _ACTIVE, Profile(sync)
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = previous


@contextlib.contextmanager
def section(name: str):
    """Time this block as ``name`` if a recording is active."""
    prof = _ACTIVE
    if prof is None:
        yield
        return
    if prof._sync:
        prof._sync()
    start = time.perf_counter()
    prof._stack.append(name)
    try:
        yield
    finally:
        if prof._sync:
            prof._sync()
        elapsed = time.perf_counter() - start
        prof._stack.pop()
        prof.inclusive[name] = prof.inclusive.get(name, 0.0) + elapsed
        if prof._stack:
            parent = prof._stack[-1]
            prof.children[parent] = prof.children.get(parent, 0.0) + elapsed
