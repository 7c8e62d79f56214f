"""``BiEncoderModel``: a sentence-embedding model (sentence-transformers layout: a HF encoder, then
pooling, then optional normalisation) that encodes each text into one vector.

It is what a base encoder such as all-MiniLM-L6-v2 was trained to be, so its cosine similarity is
a zero-shot re-ranker and a teacher for a cross-encoder trained from the same weights.

Models layer: imports only :mod:`.checkpoints` and :mod:`.base`."""

from __future__ import annotations

import json
import os

import torch
from torch import nn

from .checkpoints import local_or_hub

#: sentence-transformers' pooling flags → this model's pooling
_POOLING_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}
POOLINGS = ("mean", "cls", "max")


def _read_json(path: str, name: str) -> dict | None:
    """A JSON file of a local folder or a hub repository (None when it has none)."""
    if os.path.isdir(path):
        full = os.path.join(path, name)
        if not os.path.exists(full):
            return None
        with open(full, encoding="utf8") as f:
            return json.load(f)
    from .checkpoints import hub_files

    if name not in hub_files(path):
        return None
    from huggingface_hub import hf_hub_download

    with open(hf_hub_download(path, name), encoding="utf8") as f:
        return json.load(f)


def sentence_transformer_settings(name_or_path) -> dict | None:
    """``{pooling, normalize, max_length}`` of a checkpoint in sentence-transformers' layout
    (``modules.json`` naming a Pooling module), or None when it is not one."""
    path = local_or_hub(name_or_path)
    modules = _read_json(path, "modules.json")
    if not modules:
        return None
    types = {m.get("type", "").rsplit(".", 1)[-1]: m for m in modules}
    if "Pooling" not in types:
        return None
    pooling_cfg = _read_json(path, os.path.join(types["Pooling"].get("path", "1_Pooling"), "config.json")) or {}
    poolings = [mode for flag, mode in _POOLING_FLAGS.items() if pooling_cfg.get(flag)]
    if len(poolings) != 1:
        raise ValueError(
            f"{name_or_path!r}: its pooling ({pooling_cfg or 'no 1_Pooling/config.json'}) is not one of "
            f"{list(POOLINGS)}; BiEncoderModel reads models with exactly one of them"
        )
    bert_cfg = _read_json(path, "sentence_bert_config.json") or {}
    return {"pooling": poolings[0], "normalize": "Normalize" in types, "max_length": bert_cfg.get("max_seq_length")}


def is_bi_encoder(name_or_path) -> bool:
    """Whether a checkpoint is a sentence-embedding model in sentence-transformers' layout."""
    try:
        return sentence_transformer_settings(name_or_path) is not None
    except (OSError, ValueError):
        return False


class BiEncoderModel(nn.Module):
    """``encoder`` (a HF ``AutoModel``) → ``pooling`` over the attended tokens → unit length if
    ``normalize``: one vector per text, and a pair's score is the dot product of its two vectors."""

    def __init__(self, encoder, pooling: str = "mean", normalize: bool = True, max_length: int | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"BiEncoderModel: pooling={pooling!r}; expected one of {list(POOLINGS)}")
        self.encoder, self.pooling, self.normalize = encoder, pooling, normalize
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, name_or_path, **overrides) -> "BiEncoderModel":
        """A sentence-transformers folder or hub id (its pooling, normalisation and length);
        ``overrides`` (``pooling``, ``normalize``, ``max_length``) for any other encoder."""
        from transformers import AutoModel

        from .base import quiet_transformers

        settings = sentence_transformer_settings(name_or_path) or {}
        missing = {"pooling", "normalize"} - set(settings) - set(overrides)
        if missing:
            raise ValueError(
                f"{os.fspath(name_or_path)!r} is not a sentence-transformers model (no modules.json with "
                f"a Pooling module): pass {', '.join(sorted(missing))} to BiEncoderModel.from_pretrained"
            )
        settings.update(overrides)
        with quiet_transformers():
            encoder = AutoModel.from_pretrained(local_or_hub(name_or_path), attn_implementation="sdpa")
        return cls(encoder, **settings)

    @property
    def config(self):
        return self.encoder.config

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        """``[B, D]`` text vectors."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        elif self.pooling == "cls":
            out = hidden[:, 0]
        else:
            out = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(1).values
        return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out
