"""The model file of a small family added as a new contributor would add one (see
``pt_docs/architecture.rst``, "Adding a model family"): a backbone whose mean-pooled states, scaled,
score a pair by their dot product."""

import torch

from pyterrier_mice.models.base import BackboneConfig, BackboneModel, special_ids
from pyterrier_mice.models.checkpoints import load_encoder
from pyterrier_mice.models.masked import CrossEncoderOutput
from pyterrier_mice.models.registry import register_model


class DotConfig(BackboneConfig):
    model_type = "test_dot"

    def __init__(self, layers: int = 2, scale: float = 1.0, **kwargs):
        if layers < 1:
            raise ValueError(f"DotConfig: layers={layers} must be ≥ 1")
        self.layers, self.scale = layers, scale
        super().__init__(**kwargs)


@register_model
class DotModel(BackboneModel):
    config_class = DotConfig
    description = "a dot-product test model"

    def __init__(self, config: DotConfig, encoder=None):
        super().__init__(config, encoder)
        self.post_init()

    @classmethod
    def from_encoder(cls, encoder, tokenizer, **options) -> "DotModel":
        return cls(DotConfig(backbone=encoder.config.to_dict(), **special_ids(tokenizer), **options), encoder=encoder)

    @classmethod
    def from_backbone(cls, name_or_path, tokenizer, **options) -> "DotModel":
        return cls.from_encoder(load_encoder(name_or_path), tokenizer, **options)

    def encode(self, input_ids, attention_mask) -> torch.Tensor:
        """``[B, L, H]``: the states after the first ``layers`` layers, scaled."""
        return self.config.scale * self.encode_sequences(input_ids, attention_mask, self.config.layers)

    @staticmethod
    def pooled(states, mask) -> torch.Tensor:
        """``[B, H]``: the mean of the valid states."""
        m = mask[..., None].to(states.dtype)
        return (states * m).sum(1) / m.sum(1).clamp(min=1)

    def score(self, q_states, q_mask, d_states, d_mask) -> torch.Tensor:
        return (self.pooled(q_states, q_mask) * self.pooled(d_states, d_mask)).sum(-1)

    def forward(self, query_input_ids, query_attention_mask, doc_input_ids, doc_attention_mask, **kwargs):
        q, d = self.encode(query_input_ids, query_attention_mask), self.encode(doc_input_ids, doc_attention_mask)
        return CrossEncoderOutput(logits=self.score(q, query_attention_mask, d, doc_attention_mask)[:, None])
