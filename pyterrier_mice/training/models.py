"""Build a re-ranker of any model type from a :class:`ModelConfig` (fresh from a backbone); loading
a trained one is :mod:`pyterrier_mice.rerankers.loading`'s (re-exported here).

Training layer: imports :mod:`pyterrier_mice.models`, :mod:`pyterrier_mice.rerankers` and :mod:`.config`."""

from __future__ import annotations

from ..rerankers.colbert import ColBERTReranker
from ..rerankers.cross_encoder import CrossEncoderReranker
from ..rerankers.loading import load_reranker, reranker_class, reranker_class_of  # noqa: F401  (their old home)
from ..rerankers.mice import MiceReranker
from ..models.checkpoints import load_encoder, load_tokenizer
from ..models.colbert import ColBERTModel
from ..models.masked import MaskedCrossEncoderModel
from ..models.mice import MiceModel
from ..models.prettr import PreTTRModel
from .config import MODEL_TYPES, ModelConfig


def build_reranker(cfg: ModelConfig, tokenizer=None, encoder=None, **reranker_kwargs):
    """A new re-ranker of type ``cfg.type`` initialised from ``cfg.backbone`` (or ``encoder``)."""
    if cfg.type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {cfg.type!r}; expected one of {MODEL_TYPES}")
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.backbone)
    encoder = encoder if encoder is not None else load_encoder(cfg.backbone, num_labels=1)
    if cfg.type == "cross-encoder":
        model = MaskedCrossEncoderModel.from_encoder(encoder, tokenizer, cfg.policy)
        return CrossEncoderReranker(model, tokenizer, max_length=cfg.max_length, **reranker_kwargs)
    if cfg.type == "mice":
        model = MiceModel.from_encoder(encoder, tokenizer, **cfg.mice_options())
        return MiceReranker(
            model,
            tokenizer,
            query_max_length=cfg.query_max_length,
            doc_max_length=cfg.doc_max_length,
            **reranker_kwargs,
        )
    if cfg.type == "colbert":
        model = ColBERTModel.from_encoder(
            encoder,
            tokenizer,
            dim=cfg.dim,
            query_length=cfg.query_length,
            doc_length=cfg.doc_length,
            input_form=cfg.input_form,
        )
        return ColBERTReranker(model, tokenizer, **reranker_kwargs)
    model = PreTTRModel.from_encoder(encoder, tokenizer, cfg.split_layer, cfg.doc_position_offset)
    return CrossEncoderReranker(model, tokenizer, max_length=cfg.max_length, **reranker_kwargs)


__all__ = ["build_reranker", "load_reranker", "reranker_class", "reranker_class_of"]
