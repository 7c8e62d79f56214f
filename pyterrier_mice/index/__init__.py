"""The index layer: precomputed document states (and K/V, token ids) on disk for every split
re-ranker (MICE, ColBERT, split PreTTR): layout, storage kinds, checksums, model fingerprints,
reading and locked atomic builds. It reads re-rankers' models through duck typing.

Imports no other layer of the package."""

from .build import DocStateIndexer
from .encoder import DocumentEncoder
from .layout import MiceIndexError, text_hash
from .kinds import STORAGE_KINDS
from .store import DocStateIndex, MiceIndex


__all__ = [
    "DocStateIndex",
    "MiceIndex",
    "DocStateIndexer",
    "DocumentEncoder",
    "MiceIndexError",
    "STORAGE_KINDS",
    "text_hash",
]
