"""MICE's model: :class:`MiceModel`, the backbone cut at ℓ* (queries and documents encoded apart),
its interaction layers, and the scoring of query states against document states or cached K/V."""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

from ..attention import mean_value_context
from ..base import BackboneModel, special_ids
from ..checkpoints import load_encoder, load_tokenizer
from ..masked import CrossEncoderOutput
from ..registry import register_model
from . import masks
from .config import MiceConfig
from .interaction import SCHEDULES, InteractionLayer, LayerStep, heads, width


@register_model
class MiceModel(BackboneModel):
    """MICE over a BERT or ModernBERT backbone (see module docstring)."""

    config_class = MiceConfig
    description = "a MICE model"

    def __init__(self, config: MiceConfig, encoder=None):
        super().__init__(config, encoder)
        bb = self.backbone
        if config.reference_kernel is not None:  # the kernel the additive masks run on (their gradients differ)
            bb.reference_kernel = config.reference_kernel
        layers = list(bb.layers)
        ls, nd = config.first_interaction_layer, config.num_doc_layers
        k = config.num_interaction_layers(len(layers))
        if not 1 <= ls < len(layers) or not 1 <= k <= len(layers) - ls:
            raise ValueError(
                f"first_interaction_layer={ls}, interaction_layers={config.interaction_layers} "
                f"do not fit a backbone of {len(layers)} layers: need 1 ≤ ℓ* < {len(layers)} "
                f"and 1 ≤ interaction_layers ≤ {len(layers)} - ℓ*"
            )
        if nd > len(layers):
            raise ValueError(f"doc_layers={nd} exceeds the backbone's {len(layers)} layers")
        self.adapter = None
        if config.compress_dim > 1:
            top = self._compress(bb, layers[ls : ls + k], config.compress_dim)
        else:
            top = layers[ls : ls + k]
        self.interaction = nn.ModuleList(
            InteractionLayer(
                top[i],
                bb.make_cross_attention(top[i]),
                ls + i,
                config.exact_match_heads,
                heads(bb.attention_module(top[i]), bb) if config.lexical_bias else 0,
            )
            for i in range(k)
        )
        if config.shared_bottom_layers:
            self.query_layers = None
            bb.set_layers(layers[:ls])
        else:  # the query keeps the backbone's layers, the document gets copies (the two then train apart)
            self.query_layers = nn.ModuleList(layers[:ls])
            bb.set_layers([copy.deepcopy(layer) for layer in layers[:nd]])
        self.global_cls = None
        if config.global_cls:  # seeded from the [CLS] token's embedding row
            table = self.encoder.get_input_embeddings().weight
            row = table[config.cls_token_id] if config.cls_token_id is not None else torch.zeros(table.shape[1])
            self.global_cls = nn.Parameter(row.detach().clone().view(1, 1, -1))
        self.post_init()

    def _compress(self, bb, layers, factor: float) -> list:
        """Interaction layers of a BERT backbone narrowed by ``factor`` (hidden size, FFN and heads;
        the head size kept) behind a linear adapter; the pooler and classifier are narrowed too."""
        from transformers.models.bert.modeling_bert import BertLayer

        cfg = copy.deepcopy(self.encoder.config)
        cfg.hidden_size = int(cfg.hidden_size / factor)
        cfg.intermediate_size = int(cfg.intermediate_size / factor)
        cfg.num_attention_heads = int(cfg.num_attention_heads / factor)
        if cfg.num_attention_heads < 1 or cfg.hidden_size % cfg.num_attention_heads:
            raise ValueError(
                f"compress_dim={factor} leaves {cfg.num_attention_heads} heads for a hidden size of "
                f"{cfg.hidden_size}; choose a factor that divides the number of heads"
            )
        width = cfg.hidden_size
        self.adapter = nn.Linear(self.hidden_size, width)
        bb.base.pooler.dense = nn.Linear(width, width)
        self.encoder.classifier = nn.Linear(width, self.encoder.config.num_labels)
        return [BertLayer(cfg) for _ in layers]

    @property
    def interaction_width(self) -> int:
        """Hidden size of the interaction layers (narrower with ``compress_dim``)."""
        return width(self.interaction[0].cross)

    @property
    def interaction_heads(self) -> int:
        return heads(self.interaction[0].cross, self.backbone)

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def from_backbone(
        cls,
        name_or_path: str,
        first_interaction_layer: int = 4,
        interaction_layers: int | None = 3,
        *,
        tokenizer=None,
        **options,
    ) -> "MiceModel":
        """MICE from a HF checkpoint: a base encoder (new head) or a cross-encoder (its head kept).

        ``interaction_layers=None`` keeps every layer above ℓ* (MICE-ℓ+all); ``options`` are
        :class:`MiceConfig` fields (``cls_cross_attention``, ``interaction``, …).
        """
        encoder = load_encoder(name_or_path, num_labels=1)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls.from_encoder(encoder, tokenizer, first_interaction_layer, interaction_layers, **options)

    @classmethod
    def from_encoder(
        cls, encoder, tokenizer, first_interaction_layer: int = 4, interaction_layers: int | None = 3, **options
    ) -> "MiceModel":
        """MICE around an already-built HF sequence-classification model; ``options`` are
        :class:`MiceConfig` fields (``cls_cross_attention``, ``unmasked_local_layers``, …)."""
        options.setdefault("special_token_ids", sorted(tokenizer.all_special_ids))
        config = MiceConfig(
            first_interaction_layer=first_interaction_layer,
            interaction_layers=interaction_layers,
            backbone=encoder.config.to_dict(),
            **special_ids(tokenizer),
            **options,
        )
        return cls(config, encoder=encoder)

    @classmethod
    def from_pretrained(cls, name_or_path, *args, **kwargs) -> "MiceModel":
        """A MICE saved by this package, or one of the authors' checkpoints (an ``xpm_torch``
        folder or hub id, older or newer architecture; see :mod:`.authors`), converted; its
        :attr:`tokenizer_source` says where its tokenizer is."""
        from .authors import find_authors_checkpoint, load_authors_mice

        folder = find_authors_checkpoint(name_or_path)
        if folder is None:
            model = super().from_pretrained(name_or_path, *args, **kwargs)
            model.tokenizer_source = os.fspath(name_or_path)
            return model
        model, model.tokenizer_source = load_authors_mice(cls, folder, *args, **kwargs)
        return model

    def _with_global_cls(self, x, query_mask):
        if self.global_cls is None:
            return x, query_mask
        return (
            torch.cat([self.global_cls.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1),
            torch.cat([torch.ones_like(query_mask[:, :1]), query_mask], dim=1),
        )

    @property
    def pools_cls(self) -> bool:
        """Whether the score reads position 0 alone (the last layer then runs on it alone)."""
        bb = self.backbone
        if bb.model_type == "bert":
            return True
        return (self.config.pooling or bb.config.classifier_pooling) == "cls"

    # ----------------------------------------------------------------------- encoding
    def encode_queries(self, input_ids, attention_mask) -> torch.Tensor:
        """States after the first ℓ* layers of ``[CLS] q [SEP]`` (token type 0, positions from 0)."""
        cfg = self.config
        layers = self.query_layers if self.query_layers is not None else self.backbone.layers
        return self.encode_sequences(
            input_ids,
            attention_mask,
            len(layers),
            layers=layers,
            unmasked_local_layers=cfg.unmasked_local_layers,
            local_window=cfg.local_window,
        )

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
        return self.encode_sequences(
            input_ids,
            attention_mask,
            len(self.backbone.layers),
            cfg.doc_token_type,
            self.doc_position_ids(input_ids),
            cfg.unmasked_local_layers,
            local_window=cfg.local_window,
        )

    def memory(self, doc_states: torch.Tensor) -> torch.Tensor:
        """What the interaction layers read of the document states (through the adapter with ``compress_dim``)."""
        return doc_states if self.adapter is None else self.adapter(doc_states)

    def document_kv(self, doc_states) -> list[tuple[torch.Tensor, ...]]:
        """Per interaction layer, the keys/values of the document states (query-independent; for
        the joint interaction on rotary backbones, rotated to the document's positions), and the
        exact-match head's values with ``exact_match_heads``."""
        bb = self.backbone
        pos = None
        if self.config.interaction == "joint" and bb.model_type == "modernbert":
            ids = torch.zeros(doc_states.shape[:2], dtype=torch.long, device=doc_states.device)
            pos = self.doc_position_ids(ids)
            pos = torch.arange(ids.shape[1], device=ids.device)[None] if pos is None else pos
        memory = self.memory(doc_states)
        out = []
        for il in self.interaction:
            kv = bb.cross_kv(il.layer, il.cross, memory, il.layer_idx, pos)
            out.append(kv if il.exact_match is None else (*kv, il.exact_match.values(memory)))
        return out

    def interact(
        self, query_states, query_mask, doc_mask, doc_states=None, doc_kv=None, query_ids=None, doc_ids=None
    ) -> torch.Tensor:
        """Logits ``[B, num_labels]`` for aligned query/document states (or cached doc K/V);
        ``query_ids``/``doc_ids`` (the padded token ids) for the exact-match options. Each layer
        runs its attentions in the order of the config's ``interaction`` (:data:`SCHEDULES`), then
        its feed-forward."""
        if doc_kv is None and doc_states is None:
            raise ValueError("interact needs doc_states or doc_kv")
        bb, cfg = self.backbone, self.config
        schedule = SCHEDULES[cfg.interaction]
        match, lexical = masks.token_matches(cfg, query_ids, doc_ids)
        if doc_kv is None and cfg.interaction == "joint":
            doc_kv = self.document_kv(doc_states)
        memory = self.memory(doc_states) if doc_kv is None else None
        x, query_mask = self._with_global_cls(query_states, query_mask)
        if self.adapter is not None:
            x = self.adapter(x)
        self_masks = masks.self_masks(cfg, bb, self.interaction, query_mask, x.dtype)
        cross_mask = masks.cross_mask(cfg, query_mask, doc_mask, x.dtype)
        cls_mean = cfg.cls_cross_attention == "mean"
        layer_kv = iter(doc_kv) if doc_kv is not None else None
        last = len(self.interaction) - 1
        cls_only = self.pools_cls  # the last layer then runs on [CLS] alone from where rows stop mixing

        def cross(il, x, kv):
            rows = x.shape[1]  # all, or [CLS] alone in the last layer
            mask, bias = cross_mask[:, :, :rows], il.score_bias(None if lexical is None else lexical[:, :, :rows])
            if kv is None:  # from the document states (the backbone may skip projecting them)
                return bb.cross_attention_from_states(il.layer, il.cross, x, memory, mask, doc_mask, cls_mean, bias)
            cls_context = mean_value_context(kv[1], doc_mask) if cls_mean else None
            return bb.cross_attention(il.layer, il.cross, x, kv[:2], mask, cls_context, bias)

        for i, (il, self_mask) in enumerate(zip(self.interaction, self_masks)):
            kv = next(layer_kv) if layer_kv is not None else None
            if il.exact_match is not None:
                em = il.exact_match
                x = x + (em.read(kv[2], match) if kv is not None else em.read_states(memory, match))
            step = LayerStep(
                self_attention=lambda x, il=il, m=self_mask: bb.self_attention(il.layer, il.layer_idx, x, m)[0],
                cross_attention=lambda x, il=il, kv=kv: cross(il, x, kv),
                joint_attention=lambda x, il=il, m=self_mask, kv=kv: bb.joint_attention(
                    il.layer, il.layer_idx, x, m, kv, cross_mask
                ),
                last=i == last,
                cls_only=cls_only,
            )
            x = schedule(step, x, cfg)
            del kv, step
            if i == last and cls_only:
                x = x[:, :1]
            x = bb.feed_forward(il.layer, x)
        return bb.score_head(bb.final_states(x), query_mask, cfg.pooling)

    def forward(
        self,
        query_input_ids,
        query_attention_mask,
        doc_input_ids=None,
        doc_attention_mask=None,
        doc_states=None,
        doc_kv=None,
        **kwargs,
    ) -> CrossEncoderOutput:
        """Score aligned (query, document) rows; pass ``doc_states``/``doc_kv`` to skip encoding."""
        q = self.encode_queries(query_input_ids, query_attention_mask)
        if doc_states is None and doc_kv is None:
            doc_states = self.encode_documents(doc_input_ids, doc_attention_mask)
        return CrossEncoderOutput(
            logits=self.interact(
                q, query_attention_mask, doc_attention_mask, doc_states, doc_kv, query_input_ids, doc_input_ids
            )
        )
