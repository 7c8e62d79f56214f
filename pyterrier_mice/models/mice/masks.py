"""The masks of MICE's interaction layers: the query's self-attention per layer, the query's
cross-attention over the document, and the token matches of the exact-match options; boolean, or
additive where the config asks for the authors' numerics (:attr:`MiceConfig.reference_numerics`)."""

from __future__ import annotations

import torch

from ..attention import additive_bias, exact_match_weights, key_padding_mask, lexical_matches, pair_mask, window_mask
from .config import MiceConfig


def self_masks(config: MiceConfig, backbone, layers, query_mask, dtype) -> list:
    """The query self-attention mask of each interaction layer in ``layers`` (one object shared
    where layers agree; None for the authors' unmasked local layers)."""
    lq = query_mask.shape[1]
    reference = config.reference_numerics
    allowed = pair_mask(query_mask, query_mask) if reference else key_padding_mask(query_mask, lq).clone()
    if not config.query_reads_cls:
        allowed[:, :, 1:, 0] = False  # query tokens and [SEP] do not read [CLS]
    masks, cache = [], {}
    for il in layers:
        hw = backbone.half_window(il.layer_idx)
        if hw not in cache:
            if hw is None:
                m = allowed
            elif config.unmasked_local_layers:
                m = None
            elif not config.local_window:
                m = allowed
            else:
                m = allowed & window_mask(lq, hw, query_mask.device)
            cache[hw] = additive_bias(m, dtype) if reference and m is not None else m
        masks.append(cache[hw])
    return masks


def cross_mask(config: MiceConfig, query_mask, doc_mask, dtype) -> torch.Tensor:
    """What each query position reads of the document (``[B, 1, Lq, Ld]``), by the ``[CLS]`` mode."""
    mode = config.cls_cross_attention
    if config.reference_numerics:
        allowed = pair_mask(query_mask, doc_mask).clone()
        if mode == "reference":
            allowed[:, :, 0, :] = False  # the authors' blocked [CLS] row: uniform in the softmax
        return additive_bias(allowed, dtype)
    allowed = key_padding_mask(doc_mask, query_mask.shape[1]).clone()
    if mode != "attend":
        allowed[:, :, 0, :] = False  # Mask 1 ("mean" then replaces the empty row's zero context)
    return allowed


def token_matches(config: MiceConfig, query_ids, doc_ids) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The exact-match weights and lexical matches of the options that read token ids (None, None without)."""
    if not config.uses_token_ids:
        return None, None
    if query_ids is None or doc_ids is None:
        raise ValueError(
            "this MICE has exact-match options (exact_match_heads/lexical_bias): pass the token ids "
            "of queries and documents (query_ids=, doc_ids=)"
        )
    weights = exact_match_weights(query_ids, doc_ids) if config.exact_match_heads else None
    lexical = lexical_matches(query_ids, doc_ids, config.special_token_ids) if config.lexical_bias else None
    return weights, lexical
