"""How a re-ranker was loaded (its ``from_pretrained`` call), and whether its weights changed since:
what a pickle of a loaded re-ranker carries instead of its weights."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch


def weights_checksum(model) -> np.ndarray:
    """Two float64 sums per floating tensor of ``model`` (values, squares), on CPU: what tells
    whether the weights changed since they were loaded (not a cryptographic hash)."""
    with torch.no_grad():
        sums = [
            (float(t.sum()), float((t * t).sum()))
            for t in (p.detach().to("cpu", torch.float64) for p in model.state_dict().values() if p.is_floating_point())
        ]
    return np.asarray(sums, dtype=np.float64).reshape(-1)


def weights_versions(model) -> list[tuple[int, int]]:
    """Each parameter's storage address and in-place write counter: both unchanged means no
    optimizer step, ``load_state_dict`` or ``.to()`` touched the weights (cheap to take at load)."""
    return [(t.data_ptr(), t._version) for t in model.state_dict().values()]


@dataclasses.dataclass
class PretrainedSource:
    """How a re-ranker was loaded: what a pickle carries instead of its weights."""

    cls: type
    name_or_path: str
    args: tuple
    kwargs: dict
    versions: list | None = None  # at load (not pickled)
    checksum: np.ndarray | None = None  # at pickling

    def unchanged(self, model) -> bool:
        return self.versions == weights_versions(model)

    def same_weights(self, model) -> bool:
        now = weights_checksum(model)
        return now.shape == self.checksum.shape and bool(np.allclose(now, self.checksum, rtol=1e-9, atol=1e-12))


def recording_source(load):
    """Wrap a ``from_pretrained`` so that the re-ranker it returns remembers the call."""

    @functools.wraps(load)
    def from_pretrained(cls, name_or_path, *args, **kwargs):
        reranker = load(cls, name_or_path, *args, **kwargs)
        if type(reranker) is cls:
            reranker._pretrained = PretrainedSource(cls, name_or_path, args, kwargs, weights_versions(reranker.model))
        return reranker

    return from_pretrained
