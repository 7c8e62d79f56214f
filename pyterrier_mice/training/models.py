"""Build a re-ranker of any model type from a :class:`ModelConfig` (fresh from a backbone), or
load a trained one from a checkpoint directory."""
from __future__ import annotations

from transformers import AutoConfig

from ..colbert_reranker import ColBERTReranker
from ..cross_encoder import CrossEncoderReranker
from ..mice_reranker import MiceReranker
from ..modeling_base import load_encoder, load_tokenizer
from ..modeling_colbert import ColBERTModel
from ..modeling_masked import MaskedCrossEncoderModel
from ..modeling_mice import MiceModel
from ..modeling_prettr import PreTTRModel
from .config import ModelConfig

MODEL_TYPES = ("cross-encoder", "mice", "colbert", "prettr")


def build_reranker(cfg: ModelConfig, tokenizer=None, encoder=None, **reranker_kwargs):
    """A new re-ranker of type ``cfg.type`` initialised from ``cfg.backbone`` (or ``encoder``)."""
    if cfg.type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {cfg.type!r}; expected one of {MODEL_TYPES}")
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.backbone)
    encoder = encoder if encoder is not None else load_encoder(cfg.backbone, num_labels=1)
    kw = reranker_kwargs
    if cfg.type == "cross-encoder":
        model = MaskedCrossEncoderModel.from_encoder(encoder, tokenizer, cfg.policy)
        return CrossEncoderReranker(model, tokenizer, max_length=cfg.max_length, **kw)
    if cfg.type == "mice":
        model = MiceModel.from_encoder(encoder, tokenizer, cfg.first_interaction_layer, cfg.interaction_layers,
                                       reference_compat=cfg.reference_compat)
        return MiceReranker(model, tokenizer, query_max_length=cfg.query_max_length,
                            doc_max_length=cfg.doc_max_length, **kw)
    if cfg.type == "colbert":
        model = ColBERTModel.from_encoder(encoder, tokenizer, dim=cfg.dim, query_length=cfg.query_length,
                                          doc_length=cfg.doc_length, input_form=cfg.input_form)
        return ColBERTReranker(model, tokenizer, **kw)
    model = PreTTRModel.from_encoder(encoder, tokenizer, cfg.split_layer, cfg.doc_position_offset)
    return CrossEncoderReranker(model, tokenizer, max_length=cfg.max_length, **kw)


_RERANKER_OF = {"masked_cross_encoder": CrossEncoderReranker, "mice_prettr": CrossEncoderReranker,
                "mice": MiceReranker, "mice_colbert": ColBERTReranker}


def load_reranker(path: str, **kwargs):
    """The right re-ranker for a checkpoint saved by this package (or any HF cross-encoder)."""
    model_type = AutoConfig.from_pretrained(path).model_type
    return _RERANKER_OF.get(model_type, CrossEncoderReranker).from_pretrained(path, **kwargs)
