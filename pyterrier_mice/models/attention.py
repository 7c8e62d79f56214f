"""Masked multi-head attention on top of torch SDPA (boolean masks, or the MICE authors' additive
ones: see :func:`attend`), the masks it takes and the token-match weights of MICE's exact-match options."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[B, L, H]`` → ``[B, heads, L, H/heads]``."""
    b, n, h = x.shape
    return x.view(b, n, num_heads, h // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, L, d]`` → ``[B, L, heads·d]``."""
    b, nh, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, nh * d)


def additive_bias(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``allowed`` → the reference's additive mask: 0 where allowed, ``finfo(dtype).min``
    where blocked (a very large negative float, not −∞)."""
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float = 0.0,
    return_probs: bool = False,
    kernel: str = "sdpa",
    scale: float | None = None,
    bias: torch.Tensor | None = None,
):
    """Scaled dot-product attention under a boolean or an additive ``mask``.

    Two mask semantics:

    - **boolean** (True: may attend), this package's own: a row with no allowed key gets a zero
      output (attention over an empty set), never NaN and never a uniform average;
    - **additive** (a float bias: 0 allowed, ``finfo(dtype).min`` blocked), the MICE authors' own
      numerics: the bias is added to the logits, so a fully blocked row saturates to a *uniform*
      average over all keys, and autograd still differentiates the softmax through it
      (see :func:`additive_bias`).

    ``mask`` broadcasts to ``[B, heads, Lq, Lk]``. ``kernel`` chooses how an additive mask is
    applied: ``"eager"`` (explicit softmax, as HF BERT's eager attention) or ``"sdpa"`` (torch's
    fused kernel, as HF's SDPA attention); boolean masks always run on SDPA. With
    ``return_probs`` the eager path runs and the attention probabilities are returned too.
    ``scale`` multiplies the scores (default ``1/√d``, d the size of q's last axis). ``bias``
    (broadcasting to the scores) is added to the scores of the allowed keys (MICE's lexical bias).
    """
    eager_scale = q.shape[-1] ** -0.5 if scale is None else scale  # SDPA keeps its own default
    if mask is not None and mask.dtype.is_floating_point:
        if bias is not None:
            mask = mask + bias.to(mask.dtype)
        if return_probs or kernel == "eager":
            scores = (q @ k.transpose(-1, -2)) * eager_scale + mask
            probs = torch.softmax(scores, dim=-1)
            if dropout_p:
                probs = F.dropout(probs, dropout_p)
            out = probs @ v
            return (out, probs) if return_probs else out
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=dropout_p, scale=scale)
    empty_rows = None
    if mask is not None:
        empty_rows = ~mask.any(dim=-1, keepdim=True)  # [B, 1|h, Lq, 1]
        if bool(empty_rows.any()):
            mask = mask | empty_rows
        else:
            empty_rows = None
    if bias is not None:  # boolean mask + bias → one float mask (-inf where blocked)
        bias = bias.to(q.dtype)
        mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    if return_probs:
        scores = (q @ k.transpose(-1, -2)) * eager_scale
        if mask is not None:
            scores = scores + mask if mask.dtype.is_floating_point else scores.masked_fill(~mask, float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        if empty_rows is not None:
            probs = probs.masked_fill(empty_rows, 0.0)
        if dropout_p:
            probs = F.dropout(probs, dropout_p)
        return probs @ v, probs
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    if empty_rows is not None:
        out = out.masked_fill(empty_rows, 0.0)
    return out


def key_padding_mask(attention_mask: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
    """``[B, Lk]`` 0/1 → boolean ``[B, 1, Lq, Lk]`` where every row reads the valid keys."""
    keys = attention_mask.bool()[:, None, None, :]
    n = keys.shape[-1] if num_queries is None else num_queries
    return keys.expand(-1, 1, n, -1)


def padding_mask_or_none(attention_mask: torch.Tensor, num_queries: int | None = None) -> torch.Tensor | None:
    """:func:`key_padding_mask`, or None when the batch has no padding: no mask at all, so SDPA
    may pick its fastest (flash) kernel on CUDA."""
    return None if bool(attention_mask.all()) else key_padding_mask(attention_mask, num_queries)


def and_masks(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """Both boolean masks (None: no mask, i.e. everything allowed)."""
    return b if a is None else a if b is None else a & b


def pair_mask(query_mask: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, 1, Lq, Lk]``: both the row and the column are valid (the reference's rule,
    under which a padding row reads nothing)."""
    return (query_mask.bool()[:, :, None] & key_mask.bool()[:, None, :])[:, None]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [B, heads, L, d]`` over the valid positions of ``mask [B, L]`` → ``[B, heads, d]``
    (a batched matrix product with the weights 1/n_valid, no masked copy of ``values``)."""
    m = mask.to(values.dtype)
    w = m / m.sum(dim=-1, keepdim=True).clamp(min=1)
    return torch.einsum("bl,bhld->bhd", w, values)


def mean_value_context(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, heads·d]``: the mean of ``values [B, heads, L, d]`` over the valid positions of
    ``mask``, heads merged (MICE's ``mean`` context for ``[CLS]``)."""
    return merge_heads(masked_mean(values, mask)[:, :, None])[:, 0]


def window_mask(length: int, half_window: int, device=None) -> torch.Tensor:
    """Boolean ``[L, L]``: positions at most ``half_window`` apart (ModernBERT local layers)."""
    pos = torch.arange(length, device=device)
    return (pos[:, None] - pos[None, :]).abs() <= half_window


def exact_match_weights(query_ids: torch.Tensor, doc_ids: torch.Tensor) -> torch.Tensor:
    """``[B, Lq, Ld]``: row i spreads weight 1 uniformly over the document positions holding query
    token i's id (special and padding ids included, as the MICE authors' exact-match heads do); a
    token found nowhere reads position 0 alone. Pad the two sides with ids that never meet (e.g. -1
    and -2) where their padding should match nothing."""
    match = query_ids[:, :, None] == doc_ids[:, None, :]
    match[:, :, 0] |= ~match.any(dim=-1)
    weights = match.float()
    return weights / weights.sum(dim=-1, keepdim=True)


def lexical_matches(query_ids: torch.Tensor, doc_ids: torch.Tensor, special_ids) -> torch.Tensor:
    """Boolean ``[B, 1, Lq, Ld]``: the query token's id equals the document token's, neither of them
    a special token (``special_ids``: the tokenizer's, padding included)."""
    special = torch.as_tensor(list(special_ids), dtype=query_ids.dtype, device=query_ids.device)
    match = query_ids[:, :, None] == doc_ids[:, None, :]
    match &= ~torch.isin(query_ids, special)[:, :, None] & ~torch.isin(doc_ids, special)[:, None, :]
    return match[:, None]
