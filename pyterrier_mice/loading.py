"""What a checkpoint holds, and the one clear error when it is not what the caller needs.

Every ``from_pretrained`` of this package resolves its argument here first: a local folder
that does not exist, a folder holding another kind of model, or a model saved without its
tokenizer each get one line naming the path and saying what to do, never a traceback from
deep inside transformers or a model with silently re-initialised weights.
"""
from __future__ import annotations

import json
import os
import re

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                    "sentencepiece.bpe.model")

#: model_type → (what it is, the re-ranker that uses it)
KINDS = {
    "mice": ("a MICE model", "MiceReranker"),
    "masked_cross_encoder": ("a (masked) cross-encoder of this package", "CrossEncoderReranker"),
    "mice_prettr": ("a PreTTR model", "PreTTRReranker (split) or CrossEncoderReranker (joint)"),
    "mice_colbert": ("a ColBERT model", "ColBERTReranker"),
}

# how to build the expected kind from a cross-encoder (plain HF or this package's masked one)
_CONVERSIONS = {
    "mice": "build one with MiceModel.from_backbone(path, first_interaction_layer, interaction_layers) "
            "(its head is kept), save it with save_pretrained, and load that",
    "mice_prettr": "build one with PreTTRModel.from_backbone(path, split_layer, doc_position_offset=K), save it, "
                   "and load that",
    "mice_colbert": "build one with ColBERTModel.from_backbone(path) and train it",
}


def local_or_hub(name_or_path) -> str:
    """``name_or_path`` as a string; a local path that does not exist is an error (a hub id such
    as ``org/name`` is left for the hub to resolve)."""
    path = os.fspath(name_or_path)
    if os.path.exists(path):
        return path
    if path.startswith((".", "/", "~")) or path.count("/") > 1 or not _HUB_ID.match(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist (no such folder; a hub id has the form "
                                "'org/name')")
    return path


def model_type_of(name_or_path) -> str:
    """The ``model_type`` of a checkpoint's config (``bert``, ``mice``, …)."""
    path = local_or_hub(name_or_path)
    if os.path.isdir(path):
        cfg = os.path.join(path, "config.json")
        if not os.path.exists(cfg):
            raise FileNotFoundError(f"{path!r} holds no config.json: not a Hugging Face checkpoint folder")
        with open(cfg, encoding="utf8") as f:
            return json.load(f).get("model_type", "")
    from transformers import AutoConfig
    return AutoConfig.from_pretrained(path).model_type


def describe(model_type: str) -> str:
    if model_type in KINDS:
        return KINDS[model_type][0]
    return f"a plain Hugging Face {model_type!r} model (e.g. a cross-encoder)"


def check_model_kind(name_or_path, expected_cls, reranker_cls=None) -> None:
    """Raise a clear ``ValueError`` unless the checkpoint holds ``expected_cls``'s kind of model."""
    expected = expected_cls.config_class.model_type
    found = model_type_of(name_or_path)
    if found == expected:
        return
    user = (reranker_cls or expected_cls).__name__
    msg = f"{user}: {os.fspath(name_or_path)!r} holds {describe(found)}, not {describe(expected)}"
    if found in KINDS:
        msg += f"; load it with {KINDS[found][1]}"
        if found == "masked_cross_encoder" and expected in _CONVERSIONS:
            msg += f", or {_CONVERSIONS[expected]}"
    elif expected in _CONVERSIONS:
        msg += f"; {_CONVERSIONS[expected]}"
        if expected != "mice_colbert":
            msg += ", or use it as is with CrossEncoderReranker"
    raise ValueError(msg)


def check_tokenizer_files(name_or_path) -> None:
    """A local checkpoint folder without tokenizer files is an error naming the folder."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path) and not any(os.path.exists(os.path.join(path, f)) for f in _TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{path!r} holds no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, …): save the tokenizer "
            "beside the model (tokenizer.save_pretrained(path)) or pass tokenizer=")


def backbone_setting(name_or_path, key: str):
    """A setting (``num_hidden_layers``, ``max_position_embeddings``, …) of a checkpoint's backbone
    (a plain HF model or one of this package's)."""
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(local_or_hub(name_or_path))
    backbone = getattr(cfg, "backbone", None)
    return backbone[key] if isinstance(backbone, dict) else getattr(cfg, key)


def trained_length(name_or_path, key: str = "max_length") -> int | None:
    """The length (``max_length``, ``query_max_length``, ``doc_max_length``) a checkpoint of this
    package was trained at (``config.trained_lengths``), or None (a plain HF model, or not recorded)."""
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(local_or_hub(name_or_path))
    return (getattr(cfg, "trained_lengths", None) or {}).get(key)


def readable_length(name_or_path) -> int:
    """The longest input a cross-encoder reads well: the length a checkpoint of this package was
    trained at, else its position limit, and never more than ``MAX_PAIR_LENGTH`` (1024)."""
    from .cross_encoder import MAX_PAIR_LENGTH
    return min(backbone_setting(name_or_path, "max_position_embeddings"), MAX_PAIR_LENGTH,
               trained_length(name_or_path) or MAX_PAIR_LENGTH)


def num_backbone_layers(name_or_path) -> int:
    """The number of layers of a checkpoint's backbone."""
    return backbone_setting(name_or_path, "num_hidden_layers")
