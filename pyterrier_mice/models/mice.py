"""MICE, Minimal Interaction Cross-Encoders: queries and documents encoded apart for ℓ* layers,
then interaction layers in which the query reads the frozen document states; its config
(:class:`MiceConfig`, every option documented there) and model (:class:`MiceModel`).

Models layer: imports only :mod:`pyterrier_mice.models` modules."""

from __future__ import annotations

import copy
import functools
import inspect
import typing

import torch
from torch import nn

from .attention import (
    additive_bias,
    exact_match_weights,
    key_padding_mask,
    lexical_matches,
    mean_value_context,
    pair_mask,
    window_mask,
)
from .base import BackboneConfig, BackboneModel, special_ids
from .checkpoints import load_encoder, load_tokenizer, read_foreign_checkpoint
from .masked import CrossEncoderOutput
from .registry import register_model

CLS_MODES = ("none", "mean", "reference", "attend")
INTERACTIONS = ("sequential", "cross_first", "joint")
POOLINGS = (None, "cls", "mean", "padded_mean")
DEFAULT_CLS_MODE = "mean"
PADDING_INVARIANT_MODES = ("none", "mean", "attend")


def check_cls_mode(mode: str) -> str:
    if mode not in CLS_MODES:
        raise ValueError(f"cls_cross_attention={mode!r}; expected one of {CLS_MODES}")
    return mode


class MiceConfig(BackboneConfig):
    """The options of a MICE model (all saved in its config).

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

    The authors' newer architecture (``MiceCrossEncoder`` in ``src/MICE/modeling/mice.py`` of
    xpmir/mice, read at commit b4dc361) adds these options (its name for each in brackets; see
    :mod:`pyterrier_mice.loaders.authors_newer` for loading its checkpoints):

    - ``interaction="cross_first"`` [``cross_attn_first``, its default]: each interaction layer runs
      the cross-attention, then the query self-attention, then the FFN;
    - ``cls_cross_attention="attend"`` [``mask_cls_to_doc=False``, its default] and
      ``query_reads_cls`` [``not mask_query_to_cls``];
    - ``skip_last_cls_cross`` [``mask_cls_to_doc`` with self-attention first]: the last layer, which
      it computes for ``[CLS]`` alone, has no cross-attention block at all;
    - ``global_cls`` [``global_cls_token``]: a learned vector put before the query for the interaction
      layers (seeded from the ``[CLS]`` embedding); it is then position 0, the one that is pooled;
    - ``exact_match_heads`` [``extra_attn_bias``]: before each layer every query token adds the mean of
      a projection of the document states at the positions holding its own token id (needs the
      document's token ids);
    - ``lexical_bias`` [``lexical_bias``]: a learned per-head bias added to the cross-attention scores
      of exact matches (special tokens excluded);
    - ``compress_dim`` [``compress_dim``, BERT]: interaction layers narrower by that factor, behind a
      linear adapter applied to query and document states;
    - ``shared_bottom_layers=False`` and ``doc_layers`` [``bound_bottom_layers``, ``n_docs_ctx_layers``]:
      separate query and document stacks, the document's ``doc_layers`` deep;
    - ``pooling`` [``pooling_method``, ModernBERT]: ``"cls"``, ``"mean"`` (over the valid query
      positions) or ``"padded_mean"`` (theirs: over every position of the padded batch);
    - ``local_window=False``: ModernBERT's local layers read every valid token (no sliding window), as
      theirs do on transformers 5 (layers called with a padding mask only);
    - ``reference_kernel="eager"``: their additive masks go through an explicit softmax on every
      backbone (the older code ran ModernBERT on SDPA, whose gradients differ on fully masked rows).

    Whatever the options, a model whose score does not depend on the rest of its batch
    (:attr:`MiceConfig.padding_invariant`) can be served from a document-state index.
    """

    model_type = "mice"

    def __init__(
        self,
        first_interaction_layer: int = 4,
        interaction_layers: int | None = 3,
        cls_cross_attention: str | None = None,
        query_reads_cls: bool = False,
        interaction_self_attention: bool = True,
        unmasked_local_layers: bool = False,
        interaction: str = "sequential",
        doc_cls: bool = True,
        doc_token_type: int = 0,
        doc_position_offset: int | None = None,
        reference_compat: bool | None = None,
        global_cls: bool = False,
        exact_match_heads: bool = False,
        lexical_bias: bool = False,
        compress_dim: float = 1.0,
        shared_bottom_layers: bool = True,
        doc_layers: int | None = None,
        pooling: str | None = None,
        local_window: bool = True,
        skip_last_cls_cross: bool = False,
        special_token_ids: list[int] | None = None,
        reference_kernel: str | None = None,
        **kwargs,
    ):
        if cls_cross_attention is None:  # configs saved before the option existed keep their behaviour
            cls_cross_attention = (
                DEFAULT_CLS_MODE if reference_compat is None else ("reference" if reference_compat else "none")
            )
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
            raise ValueError(
                f"interaction='joint' takes cls_cross_attention 'none' or 'attend' (got "
                f"{cls_cross_attention!r}) and the interaction self-attention"
            )
        self.interaction = interaction
        self.doc_cls = doc_cls
        self.doc_token_type = doc_token_type
        self.doc_position_offset = doc_position_offset
        self.global_cls = bool(global_cls)
        self.exact_match_heads = bool(exact_match_heads)
        self.lexical_bias = bool(lexical_bias)
        self.compress_dim = float(compress_dim)
        self.shared_bottom_layers = bool(shared_bottom_layers)
        self.doc_layers = doc_layers
        self.pooling = pooling
        self.local_window = bool(local_window)
        self.skip_last_cls_cross = bool(skip_last_cls_cross)
        self.special_token_ids = special_token_ids
        self.reference_kernel = reference_kernel
        super().__init__(**kwargs)
        self._check_options()

    #: ``__init__`` arguments that are no user option: taken from the tokenizer, or read from old configs
    NOT_OPTIONS = ("special_token_ids", "reference_compat")

    @classmethod
    @functools.cache
    def option_types(cls) -> dict[str, object]:
        """Every option a user sets (``__init__``'s arguments but :data:`NOT_OPTIONS`), with its type:
        the one list of MICE's options (training configs read it; nothing else lists them)."""
        hints = typing.get_type_hints(cls.__init__)
        return {
            name: hints[name]
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD and name not in cls.NOT_OPTIONS
        }

    @classmethod
    def option_defaults(cls) -> dict[str, object]:
        params = inspect.signature(cls.__init__).parameters
        return {name: params[name].default for name in cls.option_types()}

    def options(self) -> dict[str, object]:
        """This config's value of every option (as resolved: e.g. the ``[CLS]`` mode chosen for None)."""
        return {name: getattr(self, name) for name in self.option_types()}

    def _check_options(self) -> None:
        """Refuse option combinations that are undefined (each with one line naming the options)."""

        def refuse(why):
            raise ValueError(f"MiceConfig: {why}")

        if self.reference_kernel not in (None, "eager", "sdpa"):
            refuse(f"reference_kernel={self.reference_kernel!r}; expected 'eager', 'sdpa' or None (the backbone's)")
        if self.pooling not in POOLINGS:
            refuse(f"pooling={self.pooling!r}; expected one of {POOLINGS[1:]} (or None: the backbone's own)")
        if self.compress_dim < 1:
            refuse(f"compress_dim={self.compress_dim}; expected a factor ≥ 1")
        if self.global_cls and (self.exact_match_heads or self.lexical_bias or self.compress_dim > 1):
            refuse(
                "global_cls cannot be combined with exact_match_heads, lexical_bias or compress_dim > 1 (the "
                "authors' code fails on these combinations: their token masks and adapter do not account for it)"
            )
        if self.interaction == "joint" and (
            self.exact_match_heads or self.lexical_bias or self.compress_dim > 1 or self.skip_last_cls_cross
        ):
            refuse(
                "interaction='joint' takes none of exact_match_heads, lexical_bias, compress_dim > 1, "
                "skip_last_cls_cross"
            )
        if self.shared_bottom_layers and self.doc_layers not in (None, self.first_interaction_layer):
            refuse(
                f"doc_layers={self.doc_layers} with shared_bottom_layers=True; documents then go through the "
                f"query's {self.first_interaction_layer} layers (pass shared_bottom_layers=False)"
            )
        if self.doc_layers is not None and self.doc_layers < 1:
            refuse(f"doc_layers={self.doc_layers}; expected ≥ 1")
        if self.skip_last_cls_cross and (self.interaction != "sequential" or self.cls_cross_attention == "attend"):
            refuse(
                "skip_last_cls_cross needs interaction='sequential' and a [CLS] that does not read the document "
                "(cls_cross_attention other than 'attend')"
            )
        if self.pooling == "padded_mean" and self.cls_cross_attention not in ("attend", "reference"):
            refuse("pooling='padded_mean' (the authors' numerics) takes cls_cross_attention 'attend' or 'reference'")
        if self.lexical_bias and not self.special_token_ids:
            refuse(
                "lexical_bias needs special_token_ids (the tokenizer's all_special_ids); build the model with "
                "from_backbone/from_encoder, which records them"
            )
        if self.backbone is not None:
            kind = self.backbone_type
            if kind != "bert" and self.compress_dim > 1:
                refuse(f"compress_dim > 1 is implemented for BERT backbones (as in the authors' code), not {kind}")
            if kind == "bert" and self.pooling not in (None, "cls"):
                refuse(f"pooling={self.pooling!r}: a BERT model pools [CLS] through its pooler")

    def num_interaction_layers(self, total_layers: int) -> int:
        k = self.interaction_layers
        return total_layers - self.first_interaction_layer if k is None else k

    @property
    def num_doc_layers(self) -> int:
        """How many layers encode a document (the query's ℓ* unless ``doc_layers`` says otherwise)."""
        return self.first_interaction_layer if self.doc_layers is None else self.doc_layers

    @property
    def reference_numerics(self) -> bool:
        """Additive ``finfo.min`` masks over padded rows, as the authors compute (padding rows then
        take part: their ``[CLS]`` row blocked from the document, or their padded mean)."""
        return self.cls_cross_attention == "reference" or self.pooling == "padded_mean"

    @property
    def uses_token_ids(self) -> bool:
        """Whether scoring needs the token ids of queries and documents (the exact-match options)."""
        return self.exact_match_heads or self.lexical_bias

    @property
    def padding_invariant(self) -> bool:
        """Whether a pair's score is independent of the other pairs of its batch."""
        return self.not_indexable is None

    @property
    def not_indexable(self) -> str | None:
        """Why precomputed document states cannot reproduce this model's scores (one of the
        authors' numerics makes a score depend on its padded batch), or None when they can."""
        if self.cls_cross_attention not in PADDING_INVARIANT_MODES:
            what, fix = (
                f"cls_cross_attention={self.cls_cross_attention!r}",
                "a padding-invariant [CLS] mode ('mean', 'none', 'attend')",
            )
        elif self.pooling == "padded_mean":
            what, fix = (
                "pooling='padded_mean'",
                "pooling='mean' (the same scores when a batch holds one query, as "
                "the authors evaluated; MiceModel.from_pretrained(path, pooling='mean'))",
            )
        elif self.unmasked_local_layers and self.backbone_type == "modernbert":
            what, fix = "unmasked_local_layers=True on ModernBERT", "a model whose local layers are masked"
        else:
            return None
        return (
            f"MICE with {what} scores each pair from its whole padded batch (the authors' numerics), which "
            f"precomputed document states cannot reproduce; use it without index=, or {fix}"
        )


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
        self.exact_match = ExactMatchHead(_width(cross)) if exact_match else None
        self.lexical_bias = nn.Parameter(torch.zeros(lexical_heads)) if lexical_heads else None

    def score_bias(self, lexical: torch.Tensor | None) -> torch.Tensor | None:
        """``[B, heads, Lq, Ld]``: the learned bias on exact matches (None without the option)."""
        if lexical is None or self.lexical_bias is None:
            return None
        return self.lexical_bias.view(1, -1, 1, 1) * lexical.to(self.lexical_bias.dtype)


def _width(attention: nn.Module) -> int:
    """The hidden size an attention module reads (BERT: ``self.query``; ModernBERT: ``Wqkv``)."""
    inner = getattr(attention, "self", attention)
    return (inner.query if hasattr(inner, "query") else inner.Wqkv).in_features


def _heads(attention: nn.Module, backbone) -> int:
    inner = getattr(attention, "self", None)
    return inner.num_attention_heads if inner is not None else backbone.num_heads


@register_model
class MiceModel(BackboneModel):
    """MICE over a BERT or ModernBERT backbone (see module docstring)."""

    config_class = MiceConfig

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
                _heads(bb.attention_module(top[i]), bb) if config.lexical_bias else 0,
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
        return _width(self.interaction[0].cross)

    @property
    def interaction_heads(self) -> int:
        return _heads(self.interaction[0].cross, self.backbone)

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
        folder or hub id, older or newer architecture; see :mod:`pyterrier_mice.loaders`), converted."""
        model = read_foreign_checkpoint("mice", name_or_path, **kwargs)
        if model is not None:
            return model
        return super().from_pretrained(name_or_path, *args, **kwargs)

    # ----------------------------------------------------------------------- masks
    def _self_masks(self, query_mask, dtype):
        """Query self-attention mask per interaction layer (shared where layers agree)."""
        cfg, lq = self.config, query_mask.shape[1]
        reference = cfg.reference_numerics
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
                elif not cfg.local_window:
                    m = allowed
                else:
                    m = allowed & window_mask(lq, hw, query_mask.device)
                cache[hw] = additive_bias(m, dtype) if reference and m is not None else m
            masks.append(cache[hw])
        return masks

    def _cross_mask(self, query_mask, doc_mask, dtype):
        cfg = self.config
        mode = cfg.cls_cross_attention
        if cfg.reference_numerics:
            allowed = pair_mask(query_mask, doc_mask).clone()
            if mode == "reference":
                allowed[:, :, 0, :] = False  # the authors' blocked [CLS] row: uniform in the softmax
            return additive_bias(allowed, dtype)
        allowed = key_padding_mask(doc_mask, query_mask.shape[1]).clone()
        if mode != "attend":
            allowed[:, :, 0, :] = False  # Mask 1 ("mean" then replaces the empty row's zero context)
        return allowed

    def _token_matches(self, query_ids, doc_ids):
        """The exact-match weights and lexical matches of the options that read token ids."""
        cfg = self.config
        if not cfg.uses_token_ids:
            return None, None
        if query_ids is None or doc_ids is None:
            raise ValueError(
                "this MICE has exact-match options (exact_match_heads/lexical_bias): pass the token ids "
                "of queries and documents (query_ids=, doc_ids=)"
            )
        weights = exact_match_weights(query_ids, doc_ids) if cfg.exact_match_heads else None
        lexical = lexical_matches(query_ids, doc_ids, cfg.special_token_ids) if cfg.lexical_bias else None
        return weights, lexical

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
        ``query_ids``/``doc_ids`` (the padded token ids) for the exact-match options."""
        if doc_kv is None and doc_states is None:
            raise ValueError("interact needs doc_states or doc_kv")
        bb, cfg = self.backbone, self.config
        joint = cfg.interaction == "joint"
        match, lexical = self._token_matches(query_ids, doc_ids)
        if doc_kv is None and joint:
            doc_kv = self.document_kv(doc_states)
        memory = self.memory(doc_states) if doc_kv is None else None
        x, query_mask = self._with_global_cls(query_states, query_mask)
        if self.adapter is not None:
            x = self.adapter(x)
        self_masks = self._self_masks(query_mask, x.dtype)
        cross_mask = self._cross_mask(query_mask, doc_mask, x.dtype)
        cls_mean = cfg.cls_cross_attention == "mean"
        layer_kv = iter(doc_kv) if doc_kv is not None else None
        last = len(self.interaction) - 1
        only_cls = self.pools_cls  # the last layer then runs on [CLS] alone from where rows stop mixing

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
                values = kv[2] if kv is not None else il.exact_match.values(memory)
                x = x + il.exact_match.read(values, match)
            if joint:
                x = bb.joint_attention(il.layer, il.layer_idx, x, self_mask, kv, cross_mask)
            elif cfg.interaction == "cross_first":
                x = cross(il, x, kv)
                x, _ = bb.self_attention(il.layer, il.layer_idx, x, self_mask)
            else:
                if cfg.interaction_self_attention:
                    x, _ = bb.self_attention(il.layer, il.layer_idx, x, self_mask)
                if i == last and only_cls:
                    x = x[:, :1]
                if not (i == last and cfg.skip_last_cls_cross):
                    x = cross(il, x, kv)
            del kv
            if i == last and only_cls:
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
