"""A new re-ranker of any model family, built from a :class:`ModelConfig` (fresh from a backbone);
loading a trained one is :func:`pyterrier_mice.rerankers.load_reranker`'s."""

from __future__ import annotations

from ..models.checkpoints import load_encoder, load_tokenizer
from ..models.prior import Prior
from .config import EQUAL, ModelConfig


def build_reranker(cfg: ModelConfig, tokenizer=None, encoder=None, **reranker_kwargs):
    """A new re-ranker of the family ``cfg.type``: its model built from ``cfg.backbone`` (or ``encoder``)
    with the family's options, wrapped by the family's re-ranker at the config's lengths, with the prior
    ``cfg.prior`` if it is trained with one (the model then starts near the prior's ranking: a new head
    adds little)."""
    family = cfg.family()
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.backbone)
    encoder = encoder if encoder is not None else load_encoder(cfg.backbone, num_labels=1)
    model = family.model.from_encoder(encoder, tokenizer, **cfg.model_options())
    if cfg.prior and cfg.prior_scale != EQUAL:  # "equal": kept beside the model after training, not trained with
        reranker_kwargs.setdefault("prior", Prior.load(cfg.prior_path, cfg.prior_scale))
    return family.reranker(model, tokenizer, **cfg.lengths(), **reranker_kwargs)
