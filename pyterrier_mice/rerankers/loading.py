"""The re-ranker for a checkpoint folder or hub id, chosen by what it holds: a model of one of the
package's families, any HF cross-encoder, or a sentence-transformers bi-encoder."""

from __future__ import annotations

from ..models.bi_encoder import is_bi_encoder
from ..models.checkpoints import has_classification_head, model_type_of
from ..models.registry import family_of_model_type
from .bi_encoder import BiEncoderReranker
from .cross_encoder import CrossEncoderReranker


def reranker_class_of(path: str) -> type:
    """The re-ranker for a checkpoint: its family's, :class:`BiEncoderReranker` for a sentence-embedding
    model (sentence-transformers' layout, no classification head), else :class:`CrossEncoderReranker`
    (which refuses a base encoder: a random head never scores)."""
    family = family_of_model_type(model_type_of(path))
    if family is not None:
        return family.reranker
    if not has_classification_head(path) and is_bi_encoder(path):
        return BiEncoderReranker
    return CrossEncoderReranker


def load_reranker(path: str, **kwargs):
    """The right re-ranker for ``path`` (see :func:`reranker_class_of`), loaded with ``kwargs``."""
    return reranker_class_of(path).from_pretrained(path, **kwargs)
