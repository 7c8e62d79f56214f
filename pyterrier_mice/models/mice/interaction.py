"""MICE's interaction layers and their schedules: :class:`InteractionLayer` (a backbone layer plus a
cross-attention over the document, with the optional exact-match head and lexical bias), and one
small schedule per ``interaction`` order saying in which order a layer's attentions run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .config import MiceConfig


class ExactMatchHead(nn.Module):
    """One interaction layer's exact-match head (the authors' ``ExactMatchAttentionHead``): a
    projection of the document states, averaged over the positions given by
    :func:`~pyterrier_mice.attention.exact_match_weights`, then projected back."""

    def __init__(self, hidden: int):
        super().__init__()
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.out_proj = nn.Linear(hidden, hidden, bias=False)

    def values(self, memory: torch.Tensor) -> torch.Tensor:
        """Query-independent ``[B, Ld, H]`` (what a K/V index stores beside the keys and values)."""
        return self.v_proj(memory)

    def read(self, values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.out_proj(weights.to(values.dtype) @ values)

    def read_states(self, memory: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """:meth:`read` from the document states: at inference the average is taken over the
        states and projected once per query token (``v_proj`` is linear and has no bias: the same
        numbers to float rounding, without projecting every document position)."""
        if torch.is_grad_enabled() or self.training:
            return self.read(self.values(memory), weights)
        return self.out_proj(self.v_proj(weights.to(memory.dtype) @ memory))


class InteractionLayer(nn.Module):
    """A backbone layer (self-attention + FFN) plus a cross-attention over document states, and
    optionally an exact-match head and a per-head lexical bias of the cross-attention scores."""

    def __init__(
        self, layer: nn.Module, cross: nn.Module, layer_idx: int, exact_match: bool = False, lexical_heads: int = 0
    ):
        super().__init__()
        self.layer = layer
        self.cross = cross
        self.layer_idx = layer_idx
        self.exact_match = ExactMatchHead(width(cross)) if exact_match else None
        self.lexical_bias = nn.Parameter(torch.zeros(lexical_heads)) if lexical_heads else None

    def score_bias(self, lexical: torch.Tensor | None) -> torch.Tensor | None:
        """``[B, heads, Lq, Ld]``: the learned bias on exact matches (None without the option)."""
        if lexical is None or self.lexical_bias is None:
            return None
        return self.lexical_bias.view(1, -1, 1, 1) * lexical.to(self.lexical_bias.dtype)


def width(attention: nn.Module) -> int:
    """The hidden size an attention module reads (BERT: ``self.query``; ModernBERT: ``Wqkv``)."""
    inner = getattr(attention, "self", attention)
    return (inner.query if hasattr(inner, "query") else inner.Wqkv).in_features


def heads(attention: nn.Module, backbone) -> int:
    inner = getattr(attention, "self", None)
    return inner.num_attention_heads if inner is not None else backbone.num_heads


@dataclass
class LayerStep:
    """One interaction layer's attentions, each ``x → x`` over the query states, as a schedule runs
    them; ``last``: the top interaction layer; ``cls_only``: its output is read at ``[CLS]`` alone."""

    self_attention: Callable[[torch.Tensor], torch.Tensor]
    cross_attention: Callable[[torch.Tensor], torch.Tensor]
    joint_attention: Callable[[torch.Tensor], torch.Tensor]
    last: bool
    cls_only: bool


def sequential(step: LayerStep, x: torch.Tensor, config: MiceConfig) -> torch.Tensor:
    """The paper's order: query self-attention (unless switched off), then the cross-attention
    (which the top layer runs for ``[CLS]`` alone, or skips with ``skip_last_cls_cross``)."""
    if config.interaction_self_attention:
        x = step.self_attention(x)
    if step.last and step.cls_only:
        x = x[:, :1]
    if step.last and config.skip_last_cls_cross:
        return x
    return step.cross_attention(x)


def cross_first(step: LayerStep, x: torch.Tensor, config: MiceConfig) -> torch.Tensor:
    """The authors' newer order: the cross-attention, then the query self-attention."""
    return step.self_attention(step.cross_attention(x))


def joint(step: LayerStep, x: torch.Tensor, config: MiceConfig) -> torch.Tensor:
    """One softmax over the query's own keys and the document's (the cross-encoder's layer)."""
    return step.joint_attention(x)


#: ``MiceConfig.interaction`` → the schedule of each interaction layer's attentions
SCHEDULES = {"sequential": sequential, "cross_first": cross_first, "joint": joint}
