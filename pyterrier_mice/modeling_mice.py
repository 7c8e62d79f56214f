"""MICE: Minimal Interaction Cross-Encoders.

Query ``[CLS] q [SEP]`` and document ``[CLS] d [SEP]`` are encoded apart (token types 0,
positions from 0) by the backbone's first ℓ* layers. Then k interaction layers, copies of
backbone layers ℓ*..ℓ*+k-1, update the query tokens only: query self-attention (query
tokens do not read ``[CLS]``), cross-attention from the query to the document states frozen
at ℓ* (its weights seeded from the same layer's self-attention), then the FFN. ``[CLS]``
does not read the document (Mask 1). Layers above ℓ*+k are dropped; the score is the
backbone's head on ``[CLS]``.

``reference_compat=True`` reproduces two quirks of the authors' implementation: the blocked
``[CLS]`` cross-attention row becomes a uniform average over *all* padded document positions
(so scores depend on the batch's padding), and ModernBERT local layers get no mask at all.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import key_padding_mask, merge_heads, window_mask
from .modeling_base import BackboneConfig, BackboneModel, load_encoder, load_tokenizer, special_ids
from .modeling_masked import CrossEncoderOutput


class MiceConfig(BackboneConfig):
    model_type = "mice"

    def __init__(self, first_interaction_layer: int = 4, interaction_layers: int | None = 3,
                 reference_compat: bool = False, **kwargs):
        self.first_interaction_layer = first_interaction_layer
        self.interaction_layers = interaction_layers
        self.reference_compat = reference_compat
        super().__init__(**kwargs)

    def num_interaction_layers(self, total_layers: int) -> int:
        k = self.interaction_layers
        return total_layers - self.first_interaction_layer if k is None else k


class InteractionLayer(nn.Module):
    """A backbone layer (self-attention + FFN) plus a cross-attention over document states."""

    def __init__(self, layer: nn.Module, cross: nn.Module, layer_idx: int):
        super().__init__()
        self.layer = layer
        self.cross = cross
        self.layer_idx = layer_idx


class MiceModel(BackboneModel):
    """MICE over a BERT or ModernBERT backbone (see module docstring)."""

    config_class = MiceConfig

    def __init__(self, config: MiceConfig, encoder=None):
        super().__init__(config, encoder)
        bb = self.backbone
        layers = list(bb.layers)
        ls = config.first_interaction_layer
        k = config.num_interaction_layers(len(layers))
        if not 0 <= ls < len(layers) or not 1 <= k <= len(layers) - ls:
            raise ValueError(f"first_interaction_layer={ls}, interaction_layers={config.interaction_layers} "
                             f"do not fit a backbone of {len(layers)} layers")
        self.interaction = nn.ModuleList(
            InteractionLayer(layers[ls + i], bb.make_cross_attention(layers[ls + i]), ls + i) for i in range(k))
        bb.set_layers(layers[:ls])
        self.post_init()

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def from_backbone(cls, name_or_path: str, first_interaction_layer: int = 4,
                      interaction_layers: int | None = 3, *, tokenizer=None, reference_compat: bool = False,
                      **kwargs) -> "MiceModel":
        """MICE from a HF checkpoint: a base encoder (new head) or a cross-encoder (its head kept).

        ``interaction_layers=None`` keeps every layer above ℓ* (MICE-ℓ+all).
        """
        encoder = load_encoder(name_or_path, num_labels=1, **kwargs)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls.from_encoder(encoder, tokenizer, first_interaction_layer, interaction_layers,
                                reference_compat=reference_compat)

    @classmethod
    def from_encoder(cls, encoder, tokenizer, first_interaction_layer: int = 4,
                     interaction_layers: int | None = 3, reference_compat: bool = False) -> "MiceModel":
        config = MiceConfig(first_interaction_layer=first_interaction_layer,
                            interaction_layers=interaction_layers, reference_compat=reference_compat,
                            backbone=encoder.config.to_dict(), **special_ids(tokenizer))
        return cls(config, encoder=encoder)

    # ----------------------------------------------------------------------- masks
    def _local_mask(self, mask, layer_idx, length, device):
        """Add ModernBERT's sliding window on local layers (or drop all masking, reference_compat)."""
        hw = self.backbone.half_window(layer_idx)
        if hw is None:
            return mask
        if self.config.reference_compat:
            return None
        return mask & window_mask(length, hw, device)

    # ----------------------------------------------------------------------- encoding
    def encode(self, input_ids, attention_mask) -> torch.Tensor:
        """States after the first ℓ* layers of ``[CLS] x [SEP]`` sequences (queries or documents)."""
        return self.encode_sequences(input_ids, attention_mask, len(self.backbone.layers),
                                     unmasked_local_layers=self.config.reference_compat)

    encode_queries = encode
    encode_documents = encode

    def document_kv(self, doc_states) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per interaction layer, the keys/values of the document states (query-independent)."""
        bb = self.backbone
        return [bb.cross_kv(il.layer, il.cross, doc_states) for il in self.interaction]

    def interact(self, query_states, query_mask, doc_mask, doc_states=None, doc_kv=None) -> torch.Tensor:
        """Logits ``[B, num_labels]`` for aligned query/document states (or cached doc K/V)."""
        if doc_kv is None:
            if doc_states is None:
                raise ValueError("interact needs doc_states or doc_kv")
            doc_kv = self.document_kv(doc_states)
        bb = self.backbone
        x = query_states
        lq = x.shape[1]
        compat = self.config.reference_compat
        self_mask = key_padding_mask(query_mask, lq).clone()
        self_mask[:, :, 1:, 0] = False  # query tokens and [SEP] do not read [CLS]
        cross_mask = key_padding_mask(doc_mask, lq).clone()
        cross_mask[:, :, 0, :] = False  # Mask 1: [CLS] does not read the document
        for il, (k, v) in zip(self.interaction, doc_kv):
            m = self._local_mask(self_mask, il.layer_idx, lq, x.device)
            x, _ = bb.self_attention(il.layer, il.layer_idx, x, m)
            cls_context = merge_heads(v.mean(dim=2, keepdim=True))[:, 0] if compat else None
            x = bb.cross_attention(il.layer, il.cross, x, (k, v), cross_mask, cls_context)
            x = bb.feed_forward(il.layer, x)
        return bb.score_head(bb.final_states(x), query_mask)

    def forward(self, query_input_ids, query_attention_mask, doc_input_ids=None, doc_attention_mask=None,
                doc_states=None, doc_kv=None, **kwargs) -> CrossEncoderOutput:
        """Score aligned (query, document) rows; pass ``doc_states``/``doc_kv`` to skip encoding."""
        q = self.encode(query_input_ids, query_attention_mask)
        if doc_states is None and doc_kv is None:
            doc_states = self.encode(doc_input_ids, doc_attention_mask)
        return CrossEncoderOutput(logits=self.interact(q, query_attention_mask, doc_attention_mask,
                                                       doc_states, doc_kv))
