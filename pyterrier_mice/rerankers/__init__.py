"""Layer 3, the PyTerrier re-rankers: the transformer contract (:mod:`.base`), the split base for
models that encode queries and documents apart (:mod:`.split`), tokenisation, profiling, and one
module per family (cross-encoder, MICE, ColBERT, PreTTR).

Imports :mod:`pyterrier_mice.models`, :mod:`pyterrier_mice.loaders` and :mod:`pyterrier_mice.index`."""
from .base import Reranker
from .colbert import ColBERTReranker
from .cross_encoder import CrossEncoderReranker, MaskedCrossEncoder, SparseCrossEncoderReranker
from .mice import MiceReranker
from .prettr import PreTTRReranker

__all__ = ["Reranker", "ColBERTReranker", "CrossEncoderReranker", "MaskedCrossEncoder", "SparseCrossEncoderReranker",
           "MiceReranker", "PreTTRReranker"]
