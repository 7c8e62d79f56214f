"""Layer 3, the PyTerrier re-rankers: the transformer contract (:mod:`.base`), the split base for
models that encode queries and documents apart (:mod:`.split`), tokenisation, profiling, and one
module per family (cross-encoder, MICE, ColBERT, PreTTR, bi-encoder), score fusion with the first
stage, and the loader that picks the re-ranker for a checkpoint.

Imports :mod:`pyterrier_mice.models`, :mod:`pyterrier_mice.loaders` and :mod:`pyterrier_mice.index`."""

from .base import Reranker
from .bi_encoder import BiEncoderReranker
from .colbert import ColBERTReranker
from .cross_encoder import CrossEncoderReranker, MaskedCrossEncoder, SparseCrossEncoderReranker
from .fusion import ScoreFusion
from .loading import load_reranker
from .mice import MiceReranker
from .prettr import PreTTRReranker

__all__ = [
    "Reranker",
    "BiEncoderReranker",
    "ColBERTReranker",
    "CrossEncoderReranker",
    "MaskedCrossEncoder",
    "SparseCrossEncoderReranker",
    "MiceReranker",
    "PreTTRReranker",
    "ScoreFusion",
    "load_reranker",
]
