"""The index layer: precomputed document states (and K/V, token ids) on disk for every split
re-ranker (MICE, ColBERT, split PreTTR): layout, storage kinds, checksums, model fingerprints,
reading and locked atomic builds. It reads re-rankers' models through duck typing."""

from .build import MiceIndexer
from .encoder import DocumentEncoder
from .storage_kinds import STORAGE_KINDS
from .layout import MiceIndexError, text_hash
from .store import MiceIndex

__all__ = [
    "MiceIndex",
    "MiceIndexer",
    "DocumentEncoder",
    "MiceIndexError",
    "STORAGE_KINDS",
    "text_hash",
]
