"""Masked multi-head attention on top of torch SDPA, and the boolean masks it takes."""
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


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
           dropout_p: float = 0.0, return_probs: bool = False):
    """Scaled dot-product attention with a boolean ``mask`` (True: may attend).

    ``mask`` broadcasts to ``[B, heads, Lq, Lk]``. A row with no allowed key gets a zero
    output (attention over an empty set), never NaN and never a uniform average.
    With ``return_probs`` the eager path runs and the attention probabilities are returned too.
    """
    empty_rows = None
    if mask is not None:
        empty_rows = ~mask.any(dim=-1, keepdim=True)  # [B, 1|h, Lq, 1]
        if bool(empty_rows.any()):
            mask = mask | empty_rows
        else:
            empty_rows = None
    if return_probs:
        scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        if empty_rows is not None:
            probs = probs.masked_fill(empty_rows, 0.0)
        if dropout_p:
            probs = F.dropout(probs, dropout_p)
        return probs @ v, probs
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    if empty_rows is not None:
        out = out.masked_fill(empty_rows, 0.0)
    return out


def key_padding_mask(attention_mask: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
    """``[B, Lk]`` 0/1 → boolean ``[B, 1, Lq, Lk]`` where every row reads the valid keys."""
    keys = attention_mask.bool()[:, None, None, :]
    n = keys.shape[-1] if num_queries is None else num_queries
    return keys.expand(-1, 1, n, -1)


def window_mask(length: int, half_window: int, device=None) -> torch.Tensor:
    """Boolean ``[L, L]``: positions at most ``half_window`` apart (ModernBERT local layers)."""
    pos = torch.arange(length, device=device)
    return (pos[:, None] - pos[None, :]).abs() <= half_window
