"""The PyTerrier re-rankers: the transformer contract (:mod:`.base`), the split base for models that
encode queries and documents apart (:mod:`.split`), tokenisation, profiling, one module per family
(cross-encoder, MICE, ColBERT, PreTTR; each declares its family), the bi-encoder, score fusion with
the first stage, and the loader that picks the re-ranker for a checkpoint."""

from .base import Reranker
from .bi_encoder import BiEncoderReranker
from .colbert import ColBERTReranker
from .cross_encoder import CrossEncoderReranker, SparseCrossEncoderReranker
from .fusion import ScoreFusion
from .loading import load_reranker, reranker_class_of
from .mice import MiceReranker
from .prettr import PreTTRReranker

__all__ = [
    "Reranker",
    "BiEncoderReranker",
    "ColBERTReranker",
    "CrossEncoderReranker",
    "SparseCrossEncoderReranker",
    "MiceReranker",
    "PreTTRReranker",
    "ScoreFusion",
    "load_reranker",
    "reranker_class_of",
]
