"""The re-ranker for a checkpoint folder or hub id, chosen by what it holds: a model of this
package, any HF cross-encoder, or a sentence-transformers bi-encoder.

Re-rankers layer: imports :mod:`pyterrier_mice.models` and re-ranker modules."""

from __future__ import annotations

from ..models.bi_encoder import is_bi_encoder
from ..models.checkpoints import has_classification_head, model_type_of
from ..models.colbert import ColBERTModel
from ..models.mice import MiceModel
from ..models.registry import MODEL_CLASSES
from .bi_encoder import BiEncoderReranker
from .colbert import ColBERTReranker
from .cross_encoder import CrossEncoderReranker
from .mice import MiceReranker

_RERANKER_OF = {MiceModel: MiceReranker, ColBERTModel: ColBERTReranker}


def reranker_class(model_type: str) -> type:
    """The re-ranker for a checkpoint's ``model_type`` (cross-encoders, masked or not, by default)."""
    return _RERANKER_OF.get(MODEL_CLASSES.get(model_type), CrossEncoderReranker)


def reranker_class_of(path: str) -> type:
    """The re-ranker for a checkpoint: by its ``model_type``, and :class:`BiEncoderReranker` for a
    sentence-embedding model (sentence-transformers' layout, no classification head)."""
    if not has_classification_head(path) and is_bi_encoder(path):
        return BiEncoderReranker
    return reranker_class(model_type_of(path))


def load_reranker(path: str, **kwargs):
    """The right re-ranker for ``path`` (see :func:`reranker_class_of`), loaded with ``kwargs``."""
    return reranker_class_of(path).from_pretrained(path, **kwargs)
