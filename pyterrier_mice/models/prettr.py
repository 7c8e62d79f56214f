"""PreTTR-ℓ: a cross-encoder whose first ℓ layers keep {[CLS], Q, [SEP1]} and {D, [SEP2]} apart,
computed jointly (a masked cross-encoder) or split (precomputable documents; see :class:`PreTTRConfig`)."""

from __future__ import annotations

import torch

from .base import special_ids
from .checkpoints import load_encoder, load_tokenizer
from .registry import register_model
from .masked import CrossEncoderOutput, MaskedCrossEncoderConfig, MaskedCrossEncoderModel
from .policies import get_policy
from .segments import CLS, D, PAD, Q, SEP1, SEP2


class PreTTRConfig(MaskedCrossEncoderConfig):
    """PreTTR-ℓ's options: ``split_layer`` (ℓ) and ``doc_position_offset``.

    Two paths compute it and agree:

    - **joint**: the masked cross-encoder with the ``prettr-ℓ`` policy over ``[CLS] q [SEP] d [SEP]``;
    - **split**: ``[CLS] q [SEP]`` and ``d [SEP]`` encoded apart by the first ℓ layers, then joined
      for the layers above. Document states after ℓ layers can be precomputed.

    Caveat: in the joint form a document token's position is ``|q| + 2 + j`` (and its BERT token
    type 1), so its states depend on the query's *length* even though it never reads the query.
    The split path can only precompute them if that offset is fixed: with
    ``doc_position_offset=K`` both paths place document token j at position ``K + j`` (queries are
    then limited to ``K - 2`` tokens), which makes the states query-independent. With
    ``doc_position_offset=None`` (the reference implementation's PreTTR) positions follow the
    query, and the split path must be given each pair's offset (``|q| + 2``), so nothing is
    precomputable.
    """

    model_type = "mice_prettr"

    def __init__(self, split_layer: int = 4, doc_position_offset: int | None = None, **kwargs):
        self.split_layer = split_layer
        self.doc_position_offset = doc_position_offset
        kwargs["policy"] = f"prettr-{split_layer}"
        super().__init__(**kwargs)


def pair_segments(q_len: torch.Tensor, d_len: torch.Tensor, length: int) -> torch.Tensor:
    """Segment ids of compact pairs ``[CLS] q [SEP] d [SEP]`` from the query length (with its
    [CLS] and [SEP]) and the document length (with its [SEP])."""
    pos = torch.arange(length, device=q_len.device)[None]
    ql, dl = q_len[:, None], d_len[:, None]
    seg = torch.full((q_len.shape[0], length), PAD, dtype=torch.long, device=q_len.device)
    seg[pos < ql + dl] = SEP2
    seg[pos < ql + dl - 1] = D
    seg[pos < ql] = SEP1
    seg[pos < ql - 1] = Q
    seg[:, 0] = CLS
    return seg


@register_model
class PreTTRModel(MaskedCrossEncoderModel):
    """PreTTR-ℓ (see module docstring). ``forward`` is the joint path; ``encode_queries``,
    ``encode_documents`` and ``join`` are the split path."""

    config_class = PreTTRConfig
    description = "a PreTTR model"

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str,
        split_layer: int = 4,
        doc_position_offset: int | None = None,
        tokenizer=None,
        num_labels: int = 1,
        **kwargs,
    ) -> "PreTTRModel":
        encoder = load_encoder(name_or_path, num_labels=num_labels, **kwargs)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls.from_encoder(encoder, tokenizer, split_layer, doc_position_offset)

    @classmethod
    def from_encoder(
        cls, encoder, tokenizer, split_layer: int = 4, doc_position_offset: int | None = None
    ) -> "PreTTRModel":
        config = PreTTRConfig(
            split_layer=split_layer,
            doc_position_offset=doc_position_offset,
            backbone=encoder.config.to_dict(),
            **special_ids(tokenizer),
        )
        return cls(config, encoder=encoder)

    def set_policy(self, policy) -> None:
        split = self.config.split_layer
        if get_policy(policy).name != f"prettr-{split}":
            raise ValueError(f"PreTTRModel's policy is fixed to prettr-{split}, got {get_policy(policy).name!r}")
        super().set_policy(policy)

    # ----------------------------------------------------------------------- joint path
    def joint_positions(self, seg: torch.Tensor) -> torch.Tensor | None:
        """Position ids of a joint batch with the document moved to ``doc_position_offset``."""
        offset = self.config.doc_position_offset
        if offset is None:
            return None
        n = seg.shape[1]
        natural = torch.arange(n, device=seg.device)[None].expand_as(seg)
        is_doc = (seg == D) | (seg == SEP2)
        first_doc = torch.where(is_doc, natural, torch.full_like(natural, n)).min(dim=1, keepdim=True).values
        if bool((first_doc > offset).any()):
            raise ValueError(f"a query is longer than doc_position_offset - 2 = {offset - 2} tokens")
        return torch.where(is_doc, natural - first_doc + offset, natural).masked_fill(seg < 0, 0)

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
        if position_ids is None and self.config.doc_position_offset is not None:
            position_ids = self.joint_positions(self.segments(input_ids, attention_mask))
        return super().forward(input_ids, attention_mask, token_type_ids, position_ids, output_attentions)

    # ----------------------------------------------------------------------- split path
    def encode_queries(self, input_ids, attention_mask) -> torch.Tensor:
        """``[CLS] q [SEP]`` after the first ℓ layers (positions from 0, token type 0)."""
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
        return self.encode_sequences(input_ids, attention_mask, self.config.split_layer, 0, pos)

    def encode_documents(self, input_ids, attention_mask, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """``d [SEP]`` after the first ℓ layers, token j at position ``offset + j`` (token type 1).

        ``offsets`` ([B]) defaults to ``doc_position_offset``; it is required when that is None.
        """
        if offsets is None:
            if self.config.doc_position_offset is None:
                raise ValueError(
                    "doc_position_offset is None: document states depend on the query "
                    "length; pass offsets=|q|+2 per row"
                )
            offsets = torch.full((input_ids.shape[0],), self.config.doc_position_offset, device=input_ids.device)
        pos = offsets[:, None] + torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        return self.encode_sequences(input_ids, attention_mask, self.config.split_layer, 1, pos)

    def join(self, q_states: list[torch.Tensor], d_states: list[torch.Tensor]) -> torch.Tensor:
        """Logits of pairs from per-pair query ``[Lq, H]`` and document ``[Ld, H]`` lower states."""
        bb = self.backbone
        device = q_states[0].device
        q_len = torch.tensor([q.shape[0] for q in q_states], device=device)
        d_len = torch.tensor([d.shape[0] for d in d_states], device=device)
        n = int((q_len + d_len).max())
        x = q_states[0].new_zeros((len(q_states), n, q_states[0].shape[-1]))  # documents cast to its dtype
        pos = torch.zeros((len(q_states), n), dtype=torch.long, device=device)
        offset = self.config.doc_position_offset
        for i, (q, d) in enumerate(zip(q_states, d_states)):
            lq, ld = q.shape[0], d.shape[0]
            x[i, :lq], x[i, lq : lq + ld] = q, d
            start = lq if offset is None else offset
            pos[i, :lq] = torch.arange(lq, device=device)
            pos[i, lq : lq + ld] = torch.arange(start, start + ld, device=device)
        seg = pair_segments(q_len, d_len, n)
        mask = (seg >= 0).long()
        masks = self.attention_masks(mask, mask, seg=seg)
        x, _ = self.run_layers(x, masks, self.config.split_layer, self.num_layers, pos)
        return bb.score_head(bb.final_states(x), mask)
