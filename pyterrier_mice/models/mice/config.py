"""MICE's options: :class:`MiceConfig`, the one place each option is defined, documented and
validated (training configs and ``derive`` pass options straight to it)."""

from __future__ import annotations

import typing
from typing import Literal

from ..base import BackboneConfig

ClsMode = Literal["none", "mean", "reference", "attend"]
Interaction = Literal["sequential", "cross_first", "joint"]
Pooling = Literal["cls", "mean", "padded_mean"]
Kernel = Literal["eager", "sdpa"]
CLS_MODES = typing.get_args(ClsMode)
INTERACTIONS = typing.get_args(Interaction)
POOLINGS = (None, *typing.get_args(Pooling))
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
    the default of each; see the documentation's "Deriving MICE from a cross-encoder"):

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
    :mod:`pyterrier_mice.models.mice.authors.newer` for loading its checkpoints):

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
        first_interaction_layer: int = 4,  # ℓ*: layers that encode queries and documents apart
        interaction_layers: int | None = 3,  # k interaction layers above ℓ* (None: every layer above)
        cls_cross_attention: ClsMode | None = None,  # what [CLS] reads of the document (None: "mean")
        query_reads_cls: bool = False,  # query tokens read [CLS] in the interaction self-attention
        interaction_self_attention: bool = True,  # the interaction layers keep the query self-attention
        unmasked_local_layers: bool = False,  # the authors' ModernBERT quirk: local layers unmasked
        interaction: Interaction = "sequential",  # the order of a layer's attentions (interaction.SCHEDULES)
        doc_cls: bool = True,  # documents encoded as [CLS] d [SEP] (False: d [SEP])
        doc_token_type: int = 0,  # the documents' token type (BERT)
        doc_position_offset: int | None = None,  # document token j at position offset + j (None: from 0)
        reference_compat: bool | None = None,  # old configs' switch, read into cls_cross_attention
        global_cls: bool = False,  # a learned vector before the query in the interaction layers
        exact_match_heads: bool = False,  # per layer, the mean of the document states at exact matches
        lexical_bias: bool = False,  # a learned per-head bias on the scores of exact matches
        compress_dim: float = 1.0,  # interaction layers narrower by this factor, behind an adapter (BERT)
        shared_bottom_layers: bool = True,  # queries and documents share the bottom layers
        doc_layers: int | None = None,  # the document stack's depth when not shared (None: ℓ*)
        pooling: Pooling | None = None,  # what the head reads (None: the backbone's own)
        local_window: bool = True,  # ModernBERT's local layers keep their sliding window
        skip_last_cls_cross: bool = False,  # the top layer, for [CLS] alone, has no cross-attention
        special_token_ids: list[int] | None = None,  # the tokenizer's special ids (lexical_bias)
        reference_kernel: Kernel | None = None,  # the kernel of the authors' additive masks (None: backbone's)
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

    NOT_OPTIONS = ("special_token_ids", "reference_compat")

    @classmethod
    def checked_options(cls, options: dict) -> dict:
        # lexical_bias reads the tokenizer's special ids, which a model built from a checkpoint records
        return cls(**options, special_token_ids=[0] if options.get("lexical_bias") else None).options()

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
