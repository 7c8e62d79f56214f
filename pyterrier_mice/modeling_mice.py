"""MICE: Minimal Interaction Cross-Encoders.

Query ``[CLS] q [SEP]`` and document ``[CLS] d [SEP]`` are encoded apart (token types 0,
positions from 0) by the backbone's first ℓ* layers. Then k interaction layers, copies of
backbone layers ℓ*..ℓ*+k-1, update the query tokens only: query self-attention (query
tokens do not read ``[CLS]``), cross-attention from the query to the document states frozen
at ℓ* (its weights seeded from the same layer's self-attention), then the FFN. Layers above
ℓ*+k are dropped; the score is the backbone's head on ``[CLS]``.

What ``[CLS]`` reads in the cross-attention is ``config.cls_cross_attention``
(:data:`CLS_MODES`):

- ``"none"``: nothing (the paper's Mask 1 as written; its context is zero);
- ``"mean"``: the uniform mean of the values over the document's valid positions (padding
  invariant, so it works from an index and from cached keys/values);
- ``"reference"``: exactly the authors' computation: every mask is additive (``finfo.min``)
  and goes through the softmax, so the blocked ``[CLS]`` row becomes a uniform average over
  *all* positions of the padded document batch (``[PAD]`` positions carry the bottom layers'
  states of ``[PAD]`` tokens), a score depends on the longest document of its batch, and the
  gradients are the authors' (the saturated softmax still sends gradient into the keys);
- ``"attend"``: attention over the document like the query tokens (the authors'
  ``mask_cls_to_doc=False``).

``unmasked_local_layers`` is the authors' ModernBERT quirk, a switch of its own: local
(sliding-window) layers get no mask at all (no window, no padding mask).

Options that bring MICE closer to the cross-encoder it is derived from (the paper's MICE is
the default of each; see the README's "Deriving MICE from a cross-encoder"):

- ``interaction="joint"``: each interaction layer attends over the query's own keys and the
  document's keys in one softmax with one residual and norm (the cross-encoder layer itself,
  with the document states frozen), instead of self-attention then a separate cross-attention;
- ``doc_cls=False``: documents are encoded as ``d [SEP]``, the cross-encoder's document segment,
  not as ``[CLS] d [SEP]``;
- ``doc_token_type`` (BERT) and ``doc_position_offset`` (document token j at position
  ``offset + j``): the cross-encoder's token type 1 and shifted positions (a fixed offset keeps
  the document states query-independent, so they can still be precomputed);
- ``query_reads_cls=True``: query tokens read ``[CLS]``, as in the cross-encoder.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import additive_bias, key_padding_mask, mean_value_context, pair_mask, window_mask
from .modeling_base import BackboneConfig, BackboneModel, load_encoder, load_tokenizer, special_ids
from .modeling_masked import CrossEncoderOutput

CLS_MODES = ("none", "mean", "reference", "attend")
INTERACTIONS = ("sequential", "joint")
DEFAULT_CLS_MODE = "mean"
PADDING_INVARIANT_MODES = ("none", "mean", "attend")


def check_cls_mode(mode: str) -> str:
    if mode not in CLS_MODES:
        raise ValueError(f"cls_cross_attention={mode!r}; expected one of {CLS_MODES}")
    return mode


class MiceConfig(BackboneConfig):
    model_type = "mice"

    def __init__(self, first_interaction_layer: int = 4, interaction_layers: int | None = 3,
                 cls_cross_attention: str | None = None, query_reads_cls: bool = False,
                 interaction_self_attention: bool = True, unmasked_local_layers: bool = False,
                 interaction: str = "sequential", doc_cls: bool = True, doc_token_type: int = 0,
                 doc_position_offset: int | None = None, reference_compat: bool | None = None, **kwargs):
        if cls_cross_attention is None:  # configs saved before the option existed keep their behaviour
            cls_cross_attention = DEFAULT_CLS_MODE if reference_compat is None else (
                "reference" if reference_compat else "none")
            unmasked_local_layers = unmasked_local_layers or bool(reference_compat)
        self.first_interaction_layer = first_interaction_layer
        self.interaction_layers = interaction_layers
        self.cls_cross_attention = check_cls_mode(cls_cross_attention)
        self.query_reads_cls = query_reads_cls
        self.interaction_self_attention = interaction_self_attention
        self.unmasked_local_layers = unmasked_local_layers
        if interaction not in INTERACTIONS:
            raise ValueError(f"interaction={interaction!r}; expected one of {INTERACTIONS}")
        if interaction == "joint" and (cls_cross_attention not in ("none", "attend") or not interaction_self_attention):
            raise ValueError(f"interaction='joint' takes cls_cross_attention 'none' or 'attend' (got "
                             f"{cls_cross_attention!r}) and the interaction self-attention")
        self.interaction = interaction
        self.doc_cls = doc_cls
        self.doc_token_type = doc_token_type
        self.doc_position_offset = doc_position_offset
        super().__init__(**kwargs)

    def num_interaction_layers(self, total_layers: int) -> int:
        k = self.interaction_layers
        return total_layers - self.first_interaction_layer if k is None else k

    @property
    def padding_invariant(self) -> bool:
        """Whether a pair's score is independent of the other pairs of its batch."""
        return self.cls_cross_attention in PADDING_INVARIANT_MODES and not (
            self.unmasked_local_layers and self.backbone_type == "modernbert")


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
        if not 1 <= ls < len(layers) or not 1 <= k <= len(layers) - ls:
            raise ValueError(f"first_interaction_layer={ls}, interaction_layers={config.interaction_layers} "
                             f"do not fit a backbone of {len(layers)} layers: need 1 ≤ ℓ* < {len(layers)} "
                             f"and 1 ≤ interaction_layers ≤ {len(layers)} - ℓ*")
        self.interaction = nn.ModuleList(
            InteractionLayer(layers[ls + i], bb.make_cross_attention(layers[ls + i]), ls + i) for i in range(k))
        bb.set_layers(layers[:ls])
        self.post_init()

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def from_backbone(cls, name_or_path: str, first_interaction_layer: int = 4,
                      interaction_layers: int | None = 3, *, tokenizer=None, **options) -> "MiceModel":
        """MICE from a HF checkpoint: a base encoder (new head) or a cross-encoder (its head kept).

        ``interaction_layers=None`` keeps every layer above ℓ* (MICE-ℓ+all); ``options`` are
        :class:`MiceConfig` fields (``cls_cross_attention``, ``interaction``, …).
        """
        encoder = load_encoder(name_or_path, num_labels=1)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls.from_encoder(encoder, tokenizer, first_interaction_layer, interaction_layers, **options)

    @classmethod
    def from_encoder(cls, encoder, tokenizer, first_interaction_layer: int = 4,
                     interaction_layers: int | None = 3, **options) -> "MiceModel":
        """MICE around an already-built HF sequence-classification model; ``options`` are
        :class:`MiceConfig` fields (``cls_cross_attention``, ``unmasked_local_layers``, …)."""
        config = MiceConfig(first_interaction_layer=first_interaction_layer,
                            interaction_layers=interaction_layers, backbone=encoder.config.to_dict(),
                            **special_ids(tokenizer), **options)
        return cls(config, encoder=encoder)

    @classmethod
    def from_pretrained(cls, name_or_path, *args, **kwargs) -> "MiceModel":
        """A MICE saved by this package, or one of the authors' checkpoints (an ``xpm_torch``
        folder or hub id holding ``definition.json`` + ``parameters.pth``), converted."""
        from .authors_checkpoint import find_authors_checkpoint, load_authors_mice
        folder = find_authors_checkpoint(name_or_path)
        if folder is not None:
            return load_authors_mice(folder)[0]
        return super().from_pretrained(name_or_path, *args, **kwargs)

    # ----------------------------------------------------------------------- masks
    def _self_masks(self, query_mask, dtype):
        """Query self-attention mask per interaction layer (shared where layers agree)."""
        cfg, lq = self.config, query_mask.shape[1]
        reference = cfg.cls_cross_attention == "reference"
        allowed = pair_mask(query_mask, query_mask) if reference else key_padding_mask(query_mask, lq).clone()
        if not cfg.query_reads_cls:
            allowed[:, :, 1:, 0] = False  # query tokens and [SEP] do not read [CLS]
        masks, cache = [], {}
        for il in self.interaction:
            hw = self.backbone.half_window(il.layer_idx)
            if hw not in cache:
                if hw is None:
                    m = allowed
                elif cfg.unmasked_local_layers:
                    m = None
                else:
                    m = allowed & window_mask(lq, hw, query_mask.device)
                cache[hw] = additive_bias(m, dtype) if reference and m is not None else m
            masks.append(cache[hw])
        return masks

    def _cross_mask(self, query_mask, doc_mask, dtype):
        mode = self.config.cls_cross_attention
        if mode == "reference":
            allowed = pair_mask(query_mask, doc_mask).clone()
            allowed[:, :, 0, :] = False  # the authors' blocked [CLS] row: uniform in the softmax
            return additive_bias(allowed, dtype)
        allowed = key_padding_mask(doc_mask, query_mask.shape[1]).clone()
        if mode != "attend":
            allowed[:, :, 0, :] = False  # Mask 1 ("mean" then replaces the empty row's zero context)
        return allowed

    # ----------------------------------------------------------------------- encoding
    def encode_queries(self, input_ids, attention_mask) -> torch.Tensor:
        """States after the first ℓ* layers of ``[CLS] q [SEP]`` (token type 0, positions from 0)."""
        return self.encode_sequences(input_ids, attention_mask, len(self.backbone.layers),
                                     unmasked_local_layers=self.config.unmasked_local_layers)

    encode = encode_queries

    def doc_position_ids(self, input_ids) -> torch.Tensor | None:
        offset = self.config.doc_position_offset
        if offset is None:
            return None
        return offset + torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)

    def encode_documents(self, input_ids, attention_mask) -> torch.Tensor:
        """States after the first ℓ* layers of documents (``[CLS] d [SEP]``, or ``d [SEP]`` without
        ``doc_cls``), with ``doc_token_type`` and positions from ``doc_position_offset`` (else 0)."""
        cfg = self.config
        return self.encode_sequences(input_ids, attention_mask, len(self.backbone.layers), cfg.doc_token_type,
                                     self.doc_position_ids(input_ids), cfg.unmasked_local_layers)

    def document_kv(self, doc_states) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per interaction layer, the keys/values of the document states (query-independent; for
        the joint interaction on rotary backbones, rotated to the document's positions)."""
        bb = self.backbone
        pos = None
        if self.config.interaction == "joint" and bb.model_type == "modernbert":
            ids = torch.zeros(doc_states.shape[:2], dtype=torch.long, device=doc_states.device)
            pos = self.doc_position_ids(ids)
            pos = torch.arange(ids.shape[1], device=ids.device)[None] if pos is None else pos
        return [bb.cross_kv(il.layer, il.cross, doc_states, il.layer_idx, pos) for il in self.interaction]

    def interact(self, query_states, query_mask, doc_mask, doc_states=None, doc_kv=None) -> torch.Tensor:
        """Logits ``[B, num_labels]`` for aligned query/document states (or cached doc K/V)."""
        if doc_kv is None and doc_states is None:
            raise ValueError("interact needs doc_states or doc_kv")
        bb, cfg = self.backbone, self.config
        joint = cfg.interaction == "joint"
        if doc_kv is None and joint:
            doc_kv = self.document_kv(doc_states)
        x = query_states
        self_masks = self._self_masks(query_mask, x.dtype)
        cross_mask = self._cross_mask(query_mask, doc_mask, x.dtype)
        cls_mean = cfg.cls_cross_attention == "mean"
        layer_kv = iter(doc_kv) if doc_kv is not None else None
        for il, self_mask in zip(self.interaction, self_masks):
            kv = next(layer_kv) if layer_kv is not None else None
            if joint:
                x = bb.joint_attention(il.layer, il.layer_idx, x, self_mask, kv, cross_mask)
                x = bb.feed_forward(il.layer, x)
                continue
            if cfg.interaction_self_attention:
                x, _ = bb.self_attention(il.layer, il.layer_idx, x, self_mask)
            if kv is None:  # from the document states (the backbone may skip projecting them)
                x = bb.cross_attention_from_states(il.layer, il.cross, x, doc_states, cross_mask, doc_mask, cls_mean)
            else:
                k, v = kv
                cls_context = mean_value_context(v, doc_mask) if cls_mean else None
                x = bb.cross_attention(il.layer, il.cross, x, (k, v), cross_mask, cls_context)
            del kv
            x = bb.feed_forward(il.layer, x)
        return bb.score_head(bb.final_states(x), query_mask)

    def forward(self, query_input_ids, query_attention_mask, doc_input_ids=None, doc_attention_mask=None,
                doc_states=None, doc_kv=None, **kwargs) -> CrossEncoderOutput:
        """Score aligned (query, document) rows; pass ``doc_states``/``doc_kv`` to skip encoding."""
        q = self.encode_queries(query_input_ids, query_attention_mask)
        if doc_states is None and doc_kv is None:
            doc_states = self.encode_documents(doc_input_ids, doc_attention_mask)
        return CrossEncoderOutput(logits=self.interact(q, query_attention_mask, doc_attention_mask,
                                                       doc_states, doc_kv))
