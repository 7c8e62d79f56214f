"""The attention-masked cross-encoder: a BERT/ModernBERT cross-encoder run with a per-layer
segment policy (Mask 0–3, Sparse CE, PreTTR-ℓ, ...) through SDPA."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

from .attention import and_masks, padding_mask_or_none, window_mask
from .base import BackboneConfig, BackboneModel, special_ids
from .checkpoints import load_encoder, load_tokenizer
from .policies import AttentionPolicy, document_reaches_cls, get_policy, layer_tables
from .segments import segment_ids
from .registry import register_model


class MaskedCrossEncoderConfig(BackboneConfig):
    model_type = "masked_cross_encoder"

    def __init__(self, policy: dict | str | None = None, **kwargs):
        self.policy = get_policy(policy).to_dict()
        super().__init__(**kwargs)


@dataclass
class CrossEncoderOutput(ModelOutput):
    logits: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@register_model
class MaskedCrossEncoderModel(BackboneModel):
    """Cross-encoder whose layer ℓ lets segment r read segment s iff ``policy.table[ℓ, r, s]``.

    With the ``full`` policy it computes exactly what the wrapped HF model computes.
    """

    config_class = MaskedCrossEncoderConfig
    description = "a (masked) cross-encoder of this package"
    wraps_cross_encoder = True

    def __init__(self, config: MaskedCrossEncoderConfig, encoder=None):
        super().__init__(config, encoder)
        self.set_policy(config.policy)
        self.post_init()

    @property
    def policy(self) -> AttentionPolicy:
        return self._policy

    def set_policy(self, policy) -> None:
        """Switch the attention policy (also recorded in the config, so it is saved)."""
        self._policy = get_policy(policy)
        self._policy.table(self.num_layers)  # validates
        if not document_reaches_cls(self._policy, self.num_layers):
            warnings.warn(
                f"attention policy {self._policy.name!r} on this {self.num_layers}-layer model never lets "
                "[CLS] receive information from the document: every document of a query gets the same "
                "score"
            )
        self.config.policy = self._policy.to_dict()
        self._tables, self._table_index = layer_tables(self._policy, self.num_layers)

    @property
    def num_layers(self) -> int:
        return len(self.backbone.layers)

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str,
        policy="full",
        tokenizer=None,
        num_labels: int = 1,
        require_head: bool = False,
        **kwargs,
    ) -> "MaskedCrossEncoderModel":
        """Wrap a HF BERT/ModernBERT checkpoint: a cross-encoder, or a base encoder with a new head to
        train (refused with ``require_head``: see :func:`load_encoder`)."""
        encoder = load_encoder(name_or_path, num_labels=num_labels, require_head=require_head, **kwargs)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls.from_encoder(encoder, tokenizer, policy)

    @classmethod
    def from_encoder(cls, encoder, tokenizer, policy="full") -> "MaskedCrossEncoderModel":
        """Wrap an already-built HF sequence-classification model."""
        config = MaskedCrossEncoderConfig(policy=policy, backbone=encoder.config.to_dict(), **special_ids(tokenizer))
        return cls(config, encoder=encoder)

    def attention_masks(self, input_ids, attention_mask, seg=None) -> list[torch.Tensor]:
        """One boolean ``[B, 1, L, L]`` mask per layer (shared objects where layers agree; None when the
        batch has no padding and nothing is masked, so SDPA may use its flash kernel).

        ``seg`` (segment ids, see :func:`segment_ids`) is computed from the ids when not given.
        """
        length = input_ids.shape[1]
        if self._policy.is_full():
            base = [padding_mask_or_none(attention_mask, length)]
            index = [0] * self.num_layers
        else:
            if seg is None:
                seg = self.segments(input_ids, attention_mask)
            valid = seg >= 0
            s = seg.clamp(min=0)
            tables = self._tables.to(input_ids.device)
            base = []
            for t in tables:
                m = t[s[:, :, None], s[:, None, :]] & valid[:, None, :]
                m = torch.where(valid[:, :, None], m, valid[:, None, :])  # pad rows read valid keys
                base.append(m[:, None])
            index = self._table_index
        return self._with_windows(base, index, length, input_ids.device)

    def segments(self, input_ids, attention_mask) -> torch.Tensor:
        return segment_ids(input_ids, attention_mask, self.config.cls_token_id, self.config.sep_token_id)

    def _with_windows(self, base, index, length, device) -> list[torch.Tensor]:
        """Per-layer masks from distinct tables, adding ModernBERT's window on local layers."""
        masks, cache = [], {}
        for layer in range(self.num_layers):
            hw = self.backbone.half_window(layer)
            key = (index[layer], hw)
            if key not in cache:
                m = base[index[layer]]
                if hw is not None:
                    m = and_masks(m, window_mask(length, hw, device))
                cache[key] = m
            masks.append(cache[key])
        return masks

    def run_layers(self, x, masks, start: int, end: int, position_ids=None, output_attentions=False):
        """Layers ``start..end-1`` over states ``x`` with their masks (indexed by layer)."""
        bb = self.backbone
        probs = []
        for i in range(start, end):
            x, p = bb.layer_forward(bb.layers[i], i, x, masks[i], position_ids, return_probs=output_attentions)
            probs.append(p)
        return x, probs

    def forward(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        output_attentions: bool = False,
        **kwargs,
    ) -> CrossEncoderOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        bb = self.backbone
        masks = self.attention_masks(input_ids, attention_mask)
        x = bb.embed(input_ids, token_type_ids, position_ids)
        x, probs = self.run_layers(x, masks, 0, self.num_layers, position_ids, output_attentions)
        logits = bb.score_head(bb.final_states(x), attention_mask)
        return CrossEncoderOutput(logits=logits, attentions=tuple(probs) if output_attentions else None)
