"""The backbone adapter: one interface over HF BERT and ModernBERT sequence-classification models
(embeddings, layers split into attention and FFN, cross-attention, head), so that every model
here can mask, split or cache attention. Adding a backbone means adding one subclass here."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .attention import attend, masked_mean, mean_value_context, merge_heads, split_heads

SUPPORTED_MODEL_TYPES = ("bert", "modernbert")


class Backbone:
    """Access to the parts of a HF sequence-classification model (see :func:`adapter`)."""

    model_type: str = ""
    #: how additive (reference-numerics) masks are applied in interaction layers: the kernel the
    #: MICE authors' top layers ran on (HF BERT built fresh: eager; ModernBERT: SDPA)
    reference_kernel: str = "sdpa"

    def __init__(self, hf_model: nn.Module):
        self.hf = hf_model
        self.config = hf_model.config

    # --- structure -------------------------------------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def set_layers(self, layers) -> None:
        raise NotImplementedError

    def drop_head(self) -> None:
        """Remove the pooler/head and classifier (for models that only need token states)."""
        raise NotImplementedError

    @property
    def num_heads(self) -> int:
        return self.config.num_attention_heads

    def attention_dropout(self, training: bool) -> float:
        return 0.0

    def half_window(self, layer_idx: int) -> int | None:
        """For local (sliding-window) layers, the largest allowed ``|i - j|``; else None."""
        return None

    def attention_module(self, layer: nn.Module) -> nn.Module:
        """The part of a layer holding its attention weights (copied to seed cross-attention)."""
        raise NotImplementedError

    def make_cross_attention(self, layer: nn.Module) -> nn.Module:
        """A cross-attention module seeded from the layer's self-attention weights."""
        return copy.deepcopy(self.attention_module(layer))

    # --- computation -----------------------------------------------------------------------
    def embed(self, input_ids, token_type_ids=None, position_ids=None) -> torch.Tensor:
        raise NotImplementedError

    def position_embeddings(self, hidden, position_ids, layer_idx):
        """Rotary ``(cos, sin)`` for a layer, or None for absolute-position backbones."""
        return None

    def self_attention(self, layer, layer_idx, x, mask, position_ids=None, rope=None, return_probs=False):
        """Self-attention sub-block with its residual and norm; returns ``(x, probs|None)``."""
        raise NotImplementedError

    def cross_kv(self, layer, cross, memory, layer_idx=None, position_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[B, heads, Ld, d]`` of ``memory`` for a cross-attention module
        (``position_ids``: rotate the keys to those positions, for rotary backbones)."""
        raise NotImplementedError

    def joint_attention(self, layer, layer_idx, x, self_mask, kv, cross_mask):
        """One attention of the query states ``x`` over their own keys and the memory's keys ``kv``
        together (a single softmax, one residual and norm), with the layer's self-attention query
        and output: a cross-encoder layer whose document states are frozen."""
        raise NotImplementedError

    def cross_attention(self, layer, cross, x, kv, mask, cls_context=None, bias=None):
        """Cross-attention sub-block (queries ``x``, keys/values ``kv``) with residual and norm.

        ``cls_context`` (``[B, H]``), when given, replaces the attention output of position 0
        (MICE's ``mean`` mode for ``[CLS]``); ``bias`` is added to the allowed scores.
        """
        raise NotImplementedError

    def cross_attention_from_states(self, layer, cross, x, states, mask, doc_mask, cls_mean=False, bias=None):
        """:meth:`cross_attention` over document ``states`` ``[B, Ld, H]`` (projected to keys and
        values here); ``cls_mean``: position 0 reads the mean of the valid values (MICE's ``mean``
        mode). Backbones may compute the same thing without the projections (see BERT's)."""
        k, v = self.cross_kv(layer, cross, states)
        cls_context = mean_value_context(v, doc_mask) if cls_mean else None
        return self.cross_attention(layer, cross, x, (k, v), mask, cls_context, bias)

    def feed_forward(self, layer, x) -> torch.Tensor:
        raise NotImplementedError

    def layer_forward(self, layer, layer_idx, x, mask, position_ids=None, rope=None, return_probs=False):
        x, probs = self.self_attention(layer, layer_idx, x, mask, position_ids, rope, return_probs)
        return self.feed_forward(layer, x), probs

    def final_states(self, x) -> torch.Tensor:
        """States after the last layer (ModernBERT's final norm)."""
        return x

    def score_head(self, x, attention_mask, pooling: str | None = None) -> torch.Tensor:
        """Logits ``[B, num_labels]`` from final states ``[B, L, H]``; ``pooling`` (``"cls"``,
        ``"mean"``: over the valid positions, ``"padded_mean"``: over every position) overrides the
        backbone's own where it has a choice."""
        raise NotImplementedError

    def _attend(self, q_states, k, v, mask, return_probs, layer_training, bias=None):
        q = split_heads(q_states, k.shape[1])
        out = attend(
            q, k, v, mask, self.attention_dropout(layer_training), return_probs, self.reference_kernel, bias=bias
        )
        if return_probs:
            ctx, probs = out
            return merge_heads(ctx), probs
        return merge_heads(out), None


class BertBackbone(Backbone):
    """BERT / MiniLM: absolute positions, token types, post-LN layers, pooler + classifier."""

    model_type = "bert"
    reference_kernel = "eager"

    @property
    def base(self):
        return self.hf.bert

    @property
    def layers(self):
        return self.base.encoder.layer

    def set_layers(self, layers):
        self.base.encoder.layer = nn.ModuleList(layers)

    def drop_head(self):
        self.base.pooler = None
        self.hf.classifier = nn.Identity()

    def attention_dropout(self, training):
        return self.config.attention_probs_dropout_prob if training else 0.0

    def attention_module(self, layer):
        return layer.attention

    def embed(self, input_ids, token_type_ids=None, position_ids=None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        return self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids)

    def _block(self, attn, x, mask, memory_kv=None, return_probs=False, cls_context=None, bias=None):
        sa = attn.self
        if memory_kv is None:
            k = split_heads(sa.key(x), sa.num_attention_heads)
            v = split_heads(sa.value(x), sa.num_attention_heads)
        else:
            k, v = memory_kv
        ctx, probs = self._attend(sa.query(x), k, v, mask, return_probs, attn.training, bias)
        return self._attention_output(attn, x, ctx, cls_context), probs

    @staticmethod
    def _attention_output(attn, x, ctx, cls_context=None):
        """Output projection, residual and norm of an attention context ``[B, Lq, H]`` (position 0
        replaced by ``cls_context`` when given)."""
        if cls_context is not None:
            ctx = torch.cat([cls_context[:, None, :].to(ctx.dtype), ctx[:, 1:]], dim=1)
        out = attn.output
        return out.LayerNorm(out.dropout(out.dense(ctx)) + x)

    def self_attention(self, layer, layer_idx, x, mask, position_ids=None, rope=None, return_probs=False):
        return self._block(layer.attention, x, mask, return_probs=return_probs)

    def cross_kv(self, layer, cross, memory, layer_idx=None, position_ids=None):
        heads = cross.self.num_attention_heads  # fewer in MICE's compressed interaction layers
        return split_heads(cross.self.key(memory), heads), split_heads(cross.self.value(memory), heads)

    def joint_attention(self, layer, layer_idx, x, self_mask, kv, cross_mask):
        attn = layer.attention
        sa = attn.self
        heads = sa.num_attention_heads
        k = torch.cat([split_heads(sa.key(x), heads), kv[0].to(x.dtype)], dim=2)
        v = torch.cat([split_heads(sa.value(x), heads), kv[1].to(x.dtype)], dim=2)
        ctx, _ = self._attend(sa.query(x), k, v, joint_mask(self_mask, cross_mask, x), False, attn.training)
        out = attn.output
        return out.LayerNorm(out.dropout(out.dense(ctx)) + x)

    def cross_attention(self, layer, cross, x, kv, mask, cls_context=None, bias=None):
        return self._block(cross, x, mask, memory_kv=kv, cls_context=cls_context, bias=bias)[0]

    def cross_attention_from_states(self, layer, cross, x, states, mask, doc_mask, cls_mean=False, bias=None):
        """At inference under a boolean mask, without projecting the document to keys and values:
        each head's query is mapped back through the key weights (``q·(W_k d + b_k) = (W_kᵀq)·d``
        plus a constant per row, which the softmax ignores), the heads' queries attend over the raw
        states together, and the value weights are applied to the |q| weighted sums per head
        (``Σ p (W_v d + b_v) = W_v Σ p d + b_v``). The same numbers as projecting (to float
        rounding) at a tenth of the FLOPs for 8 query tokens and 512 document tokens; taken when it
        needs fewer FLOPs (about |q| < 27 for 128 document tokens, |q| < 33 for 512, hidden size
        384 and 12 heads). Training, the reference's additive masks and a score ``bias`` take the
        projecting path."""
        sa = cross.self
        b, n, _ = x.shape
        heads, ld, hidden = sa.num_attention_heads, states.shape[1], states.shape[-1]
        # multiply-adds per document: h·|q|·|d|·H + |q|·H² without projecting, |d|·H² + |q|·|d|·H with
        cheaper = heads * n * ld + n * hidden < ld * hidden + n * ld
        if (
            torch.is_grad_enabled()
            or cross.training
            or mask is None
            or mask.dtype != torch.bool
            or not cheaper
            or bias is not None
            or not isinstance(sa.key.weight, torch.Tensor)  # quantised (int8): its weights are not read
        ):
            return super().cross_attention_from_states(layer, cross, x, states, mask, doc_mask, cls_mean, bias)
        q = split_heads(sa.query(x), heads)  # [B, h, Lq, d]
        d = q.shape[-1]
        w_k, w_v = sa.key.weight.view(heads, d, -1), sa.value.weight.view(heads, d, -1)  # [h, d, H]
        mask = mask.expand(b, 1, n, mask.shape[-1])
        reads = mask.any(dim=-1, keepdim=True)  # [B, 1, Lq, 1]
        keys = doc_mask.bool()[:, None, None, :]
        per_row = not torch.equal(mask, keys & reads)  # else every row reads the document's keys, or nothing
        ctx = torch.empty_like(q)
        # a few documents at a time: their [h·Lq, H] queries stay small (≈1 MiB), in cache and off the heap
        step = max(1, 2**20 // (heads * n * states.shape[-1] * states.element_size()))
        for s in range(0, b, step):
            e = min(b, s + step)
            q_states = torch.einsum("bhqd,hde->bhqe", q[s:e], w_k).reshape(e - s, 1, heads * n, -1)
            rows = mask[s:e].expand(e - s, heads, n, -1).reshape(e - s, 1, heads * n, -1) if per_row else keys[s:e]
            memory = states[s:e, None].to(x.dtype)
            c = attend(q_states, memory, memory, rows, scale=d**-0.5)  # [b, 1, h·Lq, H]
            ctx[s:e] = torch.einsum("bhqe,hde->bhqd", c.view(e - s, heads, n, -1), w_v)
        if sa.value.bias is not None:
            ctx = ctx + sa.value.bias.view(1, heads, 1, -1)
        ctx = merge_heads(ctx * reads.to(ctx.dtype))  # rows reading nothing: 0
        cls_context = sa.value(masked_mean(states[:, None].to(x.dtype), doc_mask)[:, 0]) if cls_mean else None
        return self._attention_output(cross, x, ctx, cls_context)

    def feed_forward(self, layer, x):
        return layer.output(layer.intermediate(x), x)

    def score_head(self, x, attention_mask, pooling=None):
        pooled = self.base.pooler(x) if self.base.pooler is not None else x[:, 0]
        return self.hf.classifier(self.hf.dropout(pooled))


class ModernBertBackbone(Backbone):
    """ModernBERT / Ettin: RoPE, pre-LN, alternating global/local layers, final norm + head."""

    model_type = "modernbert"

    @property
    def base(self):
        return self.hf.model

    @property
    def layers(self):
        return self.base.layers

    def set_layers(self, layers):
        self.base.layers = nn.ModuleList(layers)

    def drop_head(self):
        self.hf.head = nn.Identity()
        self.hf.classifier = nn.Identity()

    def attention_dropout(self, training):
        return self.config.attention_dropout if training else 0.0

    def attention_module(self, layer):
        return layer.attn

    def layer_type(self, layer_idx: int) -> str:
        return self.config.layer_types[layer_idx]

    def half_window(self, layer_idx):
        if self.layer_type(layer_idx) == "sliding_attention":
            return self.config.local_attention // 2
        return None

    def embed(self, input_ids, token_type_ids=None, position_ids=None):
        return self.base.embeddings(input_ids=input_ids)

    def position_embeddings(self, hidden, position_ids, layer_idx):
        if position_ids is None:
            position_ids = torch.arange(hidden.shape[1], device=hidden.device)[None]
        return self.base.rotary_emb(hidden, position_ids, self.layer_type(layer_idx))

    def _qkv(self, attn, x, parts):
        """Project ``x`` with the rows of ``Wqkv`` for ``parts`` ⊂ {0: q, 1: k, 2: v}."""
        h = self.config.hidden_size
        if not isinstance(attn.Wqkv.weight, torch.Tensor):  # quantised (int8): project all, keep the parts
            qkv = attn.Wqkv(x)
            return [qkv[..., p * h : (p + 1) * h] for p in parts]
        w, b = attn.Wqkv.weight, attn.Wqkv.bias
        return [
            nn.functional.linear(x, w[p * h : (p + 1) * h], None if b is None else b[p * h : (p + 1) * h])
            for p in parts
        ]

    def self_attention(self, layer, layer_idx, x, mask, position_ids=None, rope=None, return_probs=False):
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        attn = layer.attn
        h = layer.attn_norm(x)
        q, k, v = (split_heads(t, self.num_heads) for t in self._qkv(attn, h, (0, 1, 2)))
        if rope is None:
            rope = self.position_embeddings(x, position_ids, layer_idx)
        cos, sin = rope
        q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)
        out = attend(q, k, v, mask, self.attention_dropout(attn.training), return_probs, self.reference_kernel)
        ctx, probs = out if return_probs else (out, None)
        return x + attn.out_drop(attn.Wo(merge_heads(ctx))), probs

    def cross_kv(self, layer, cross, memory, layer_idx=None, position_ids=None):
        h = layer.attn_norm(memory)
        k, v = (split_heads(t, self.num_heads) for t in self._qkv(cross, h, (1, 2)))
        if position_ids is not None:
            from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

            cos, sin = self.position_embeddings(memory, position_ids, layer_idx)
            _, k = apply_rotary_pos_emb(k, k, cos, sin, unsqueeze_dim=1)
        return k, v

    def joint_attention(self, layer, layer_idx, x, self_mask, kv, cross_mask):
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        attn = layer.attn
        q, k, v = (split_heads(t, self.num_heads) for t in self._qkv(attn, layer.attn_norm(x), (0, 1, 2)))
        cos, sin = self.position_embeddings(x, None, layer_idx)
        q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)
        k, v = torch.cat([k, kv[0].to(x.dtype)], dim=2), torch.cat([v, kv[1].to(x.dtype)], dim=2)
        out = attend(q, k, v, joint_mask(self_mask, cross_mask, x), self.attention_dropout(attn.training))
        return x + attn.out_drop(attn.Wo(merge_heads(out)))

    def cross_attention(self, layer, cross, x, kv, mask, cls_context=None, bias=None):
        (q,) = self._qkv(cross, layer.attn_norm(x), (0,))
        ctx, _ = self._attend(q, kv[0], kv[1], mask, False, cross.training, bias)
        if cls_context is not None:
            ctx = torch.cat([cls_context[:, None, :].to(ctx.dtype), ctx[:, 1:]], dim=1)
        return x + cross.out_drop(cross.Wo(ctx))

    def feed_forward(self, layer, x):
        return x + layer.mlp(layer.mlp_norm(x))

    def final_states(self, x):
        return self.base.final_norm(x)

    def score_head(self, x, attention_mask, pooling=None):
        pooling = pooling or self.config.classifier_pooling
        if pooling == "mean":
            m = attention_mask.to(x.dtype)[..., None]
            pooled = (x * m).sum(1) / m.sum(1)
        elif pooling == "padded_mean":  # the MICE authors' x.mean(dim=1): padding rows included
            pooled = x.mean(dim=1)
        else:
            pooled = x[:, 0]
        return self.hf.classifier(self.hf.drop(self.hf.head(pooled)))


def joint_mask(self_mask, cross_mask, x) -> torch.Tensor:
    """``[B, 1, Lq, Lq + Ld]``: the self part (all allowed where ``self_mask`` is None) beside the cross part."""
    b, lq = x.shape[:2]
    own = (
        torch.ones(b, 1, lq, lq, dtype=torch.bool, device=x.device)
        if self_mask is None
        else self_mask.expand(b, 1, lq, lq)
    )
    return torch.cat([own, cross_mask.expand(b, 1, lq, cross_mask.shape[-1])], dim=-1)


_ADAPTERS = {cls.model_type: cls for cls in (BertBackbone, ModernBertBackbone)}


def check_model_type(model_type: str) -> None:
    if model_type not in _ADAPTERS:
        raise ValueError(
            f"unsupported backbone model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )


def adapter(hf_model: nn.Module) -> Backbone:
    """The adapter for a HF ``*ForSequenceClassification`` model (BERT or ModernBERT)."""
    model_type = hf_model.config.model_type
    check_model_type(model_type)
    return _ADAPTERS[model_type](hf_model)
