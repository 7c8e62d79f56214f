"""ColBERT over a BERT/ModernBERT backbone: token embeddings projected to ``dim``, L2-normalised,
scored by MaxSim summed over the query positions (input forms: :class:`ColBERTConfig`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import BackboneConfig, BackboneModel, special_ids
from .checkpoints import load_encoder, load_tokenizer
from .masked import CrossEncoderOutput
from .registry import register_model

INPUT_FORMS = ("standard", "reference")


class ColBERTConfig(BackboneConfig):
    """ColBERT's options: ``dim``, ``query_max_length``, ``doc_max_length`` and the ``input_form``.

    Two input forms:

    - ``"standard"`` (ColBERT): ``[CLS] [Q] q [SEP]`` padded with ``[MASK]`` to ``query_max_length``
      (query augmentation: the masks are attended and scored), ``[CLS] [D] d [SEP]`` truncated to
      ``doc_max_length``; the markers default to ``[unused0]``/``[unused1]``.
    - ``"reference"`` (the MICE authors' baseline, PyLate 1.3.4 with its plain-tokenizer path): no
      markers; the query padded to exactly ``query_max_length`` with ``[MASK]`` (PyLate makes the mask
      token the tokenizer's pad token), with attention mask 0: the ``[MASK]`` positions are not
      attended as keys, but their contextualised embeddings are still summed; documents
      truncated to ``doc_max_length``.
    """

    model_type = "mice_colbert"
    NOT_OPTIONS = ("query_marker_id", "doc_marker_id", "mask_token_id")

    def __init__(
        self,
        dim: int = 128,
        query_max_length: int = 32,
        doc_max_length: int = 180,
        input_form: str = "standard",
        query_marker: str = "[unused0]",
        doc_marker: str = "[unused1]",
        query_marker_id: int | None = None,
        doc_marker_id: int | None = None,
        mask_token_id: int | None = None,
        **kwargs,
    ):
        # the names a ColBERT of this package saved before its lengths took every family's names
        query_max_length = kwargs.pop("query_length", query_max_length)
        doc_max_length = kwargs.pop("doc_length", doc_max_length)
        if input_form not in INPUT_FORMS:
            raise ValueError(f"input_form={input_form!r}; expected one of {INPUT_FORMS}")
        self.dim, self.query_max_length, self.doc_max_length = dim, query_max_length, doc_max_length
        self.input_form = input_form
        self.query_marker, self.doc_marker = query_marker, doc_marker
        self.query_marker_id, self.doc_marker_id = query_marker_id, doc_marker_id
        self.mask_token_id = mask_token_id
        super().__init__(**kwargs)


@register_model
class ColBERTModel(BackboneModel):
    """Backbone (all layers) + ``Linear(H, dim, bias=False)`` + L2 normalisation + MaxSim."""

    config_class = ColBERTConfig
    description = "a ColBERT model"

    def __init__(self, config: ColBERTConfig, encoder=None):
        super().__init__(config, encoder)
        self.backbone.drop_head()
        self.projection = nn.Linear(self.hidden_size, config.dim, bias=False)
        self.post_init()

    @classmethod
    def from_backbone(cls, name_or_path: str, *, tokenizer=None, **config_kwargs) -> "ColBERTModel":
        encoder = load_encoder(name_or_path, num_labels=1)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls.from_encoder(encoder, tokenizer, **config_kwargs)

    @classmethod
    def from_encoder(cls, encoder, tokenizer, **config_kwargs) -> "ColBERTModel":
        config = ColBERTConfig(backbone=encoder.config.to_dict(), **special_ids(tokenizer), **config_kwargs)
        config.mask_token_id = tokenizer.mask_token_id
        if config.input_form == "reference" and tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no [MASK] token, with which the reference ColBERT form pads queries")
        if config.input_form == "standard":
            unk = tokenizer.unk_token_id
            ids = {m: tokenizer.convert_tokens_to_ids(m) for m in (config.query_marker, config.doc_marker)}
            bad = [m for m, i in ids.items() if i is None or i == unk]
            if bad or tokenizer.mask_token_id is None:
                raise ValueError(
                    f"the tokenizer has no {bad or '[MASK]'} token needed by the standard ColBERT "
                    "input form; pass query_marker=/doc_marker= or input_form='reference'"
                )
            config.query_marker_id, config.doc_marker_id = ids[config.query_marker], ids[config.doc_marker]
        return cls(config, encoder=encoder)

    def encode(self, input_ids, attention_mask) -> torch.Tensor:
        """L2-normalised token embeddings ``[B, L, dim]``."""
        x = self.encode_sequences(input_ids, attention_mask, len(self.backbone.layers))
        return F.normalize(self.projection(self.backbone.final_states(x)), p=2, dim=-1)

    @staticmethod
    def maxsim(q_emb, d_emb, d_mask) -> torch.Tensor:
        """Σ over every query position of the max cosine over the document's valid tokens."""
        sim = q_emb @ d_emb.transpose(-1, -2)  # [B, Lq, Ld]
        sim = sim.masked_fill(~d_mask.bool()[:, None, :], torch.finfo(sim.dtype).min)  # -1e9 overflows fp16
        return sim.max(dim=-1).values.sum(dim=-1)

    def forward(
        self, query_input_ids, query_attention_mask, doc_input_ids, doc_attention_mask, **kwargs
    ) -> CrossEncoderOutput:
        q = self.encode(query_input_ids, query_attention_mask)
        d = self.encode(doc_input_ids, doc_attention_mask)
        return CrossEncoderOutput(logits=self.maxsim(q, d, doc_attention_mask)[:, None])
