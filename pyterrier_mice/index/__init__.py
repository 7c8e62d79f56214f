"""The on-disk document-state index shared by every split re-ranker (MICE, ColBERT, split PreTTR):
layout and errors (:mod:`.layout`), storage kinds (:mod:`.storage`), checksums
(:mod:`.checksums`), model fingerprints (:mod:`.fingerprint`), reading (:mod:`.store`) and
locked atomic builds (:mod:`.build`)."""
from .build import DocStateIndexer
from .layout import MiceIndexError, text_hash
from .storage import STORAGE_KINDS
from .store import DocStateIndex, MiceIndex


__all__ = ["DocStateIndex", "MiceIndex", "DocStateIndexer", "MiceIndexError", "STORAGE_KINDS", "text_hash"]
