"""The MICE authors' newer ``MiceCrossEncoder`` (``src/MICE/modeling/mice.py`` of xpmir/mice, read
at b4dc361) converted to :class:`~pyterrier_mice.MiceModel` (the option mapping:
:func:`newer_options`)."""

from __future__ import annotations

import logging
import os

import torch

from .weights import convert_state_dict
from .layout import (
    BASE_CONFIGS,
    HEAD_CONFIGS,
    TOKENIZER_FILES,
    WEIGHT_FILES,
    AuthorsCheckpointError,
    AuthorsFolder,
    read_config_dict,
)

logger = logging.getLogger(__name__)

#: their ``MiceCrossEncoder`` parameters and the class defaults (a field missing from a definition)
NEWER_DEFAULTS = {
    "n_contextualization_layers": 6,
    "n_docs_ctx_layers": None,
    "n_interaction_layers": None,
    "bound_bottom_layers": True,
    "cross_attn_first": True,
    "mask_cls_to_doc": False,
    "mask_query_to_cls": True,
    "freeze_base": False,
    "random_top_layers": False,
    "global_cls_token": False,
    "extra_attn_bias": False,
    "lexical_bias": False,
    "compress_dim": 1.0,
    "pooling_method": None,
}
DEFAULT_TOKENIZER_LENGTH = 4096  # xpmir's HFTokenizer.max_length


def newer_options(params: dict, config) -> dict:
    """:class:`~pyterrier_mice.models.mice.MiceConfig` options equivalent to their parameters, for a
    backbone ``config``.

    Their options map onto ours as follows (the
    conversion keeps their numerics, so a converted model scores as theirs does):

    - ``n_contextualization_layers`` → ``first_interaction_layer``;
    - ``n_interaction_layers`` (None: the rest) → ``interaction_layers``;
    - ``bound_bottom_layers``, ``n_docs_ctx_layers`` → ``shared_bottom_layers``, ``doc_layers``;
    - ``cross_attn_first`` → ``interaction="cross_first"`` (else ``"sequential"``);
    - ``mask_cls_to_doc=False`` → ``cls_cross_attention="attend"``; ``True`` → ``"reference"`` (their
      blocked row: uniform over the padded document), and ``skip_last_cls_cross`` with
      self-attention first and cls pooling;
    - ``mask_query_to_cls`` → ``query_reads_cls = not mask_query_to_cls``;
    - ``global_cls_token`` → ``global_cls``; ``extra_attn_bias`` → ``exact_match_heads``;
    - ``lexical_bias`` (ModernBERT only) → ``lexical_bias`` (their BERT has no such weights and ignores
      the flag; so does the conversion);
    - ``compress_dim`` (BERT only) → ``compress_dim`` (ignored on ModernBERT, as theirs);
    - ``pooling_method`` (ModernBERT; None: the config's ``classifier_pooling``) → ``pooling``:
      ``"cls"``, or ``"padded_mean"`` for their mean over every padded query position;
    - their ModernBERT layers called with a mask → ``local_window=False`` (no sliding window);
      their ``_attn_implementation="eager"`` → ``reference_kernel="eager"``;
    - ``freeze_base``, ``random_top_layers``: training only (recorded, no effect on scores).
    """
    kind = config.model_type
    pooling = (
        (params["pooling_method"] or getattr(config, "classifier_pooling", "cls")) if kind == "modernbert" else "cls"
    )
    if pooling not in ("cls", "mean"):
        raise AuthorsCheckpointError(f"pooling_method={pooling!r}: expected 'cls' or 'mean'")
    cross_first, blocked = bool(params["cross_attn_first"]), bool(params["mask_cls_to_doc"])
    n_docs = params["n_docs_ctx_layers"]
    options = {
        "interaction": "cross_first" if cross_first else "sequential",
        "cls_cross_attention": "reference" if blocked else "attend",
        "skip_last_cls_cross": blocked and not cross_first and pooling == "cls",
        "query_reads_cls": not params["mask_query_to_cls"],
        "global_cls": bool(params["global_cls_token"]),
        "exact_match_heads": bool(params["extra_attn_bias"]),
        "lexical_bias": bool(params["lexical_bias"]) and kind == "modernbert",
        "compress_dim": float(params["compress_dim"]) if kind == "bert" else 1.0,
        "shared_bottom_layers": bool(params["bound_bottom_layers"]),
        "doc_layers": None if n_docs is None else int(n_docs),
    }
    if kind == "modernbert":
        options.update(pooling="cls" if pooling == "cls" else "padded_mean", local_window=False)
    options["reference_kernel"] = "eager"  # their configs get _attn_implementation="eager" on both backbones
    return options


def load_newer_mice(model_class, ckpt: AuthorsFolder, backbone: str | None = None, **overrides):
    """``(model, tokenizer source)`` from a newer authors' folder, as a ``model_class``
    (:class:`MiceModel`); ``backbone`` replaces ``hf_id`` where the folder lacks its config or
    tokenizer; ``overrides`` are
    :class:`MiceConfig` fields applied over the converted ones (e.g. ``pooling="mean"``)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ...checkpoints import load_tokenizer

    params = {**NEWER_DEFAULTS, **{k: v for k, v in ckpt.fields.items() if k in NEWER_DEFAULTS}}
    hf_id = backbone or ckpt.fields["hf_id"]
    base_config = ckpt.find(BASE_CONFIGS) or ckpt.find(("config.json",), under=ckpt.folder)
    config = AutoConfig.for_model(**read_config_dict(base_config)) if base_config else AutoConfig.from_pretrained(hf_id)
    if config.model_type not in ("bert", "modernbert"):
        raise AuthorsCheckpointError(
            f"{ckpt.folder}: a {ckpt.model_type} over a {config.model_type!r} backbone; "
            "only their BERT and ModernBERT MICE are supported"
        )
    config.num_labels = 1
    options = newer_options(params, config)
    for name, kind, why in (
        ("lexical_bias", "bert", "their BERT MICE has no lexical-bias weights"),
        ("compress_dim", "modernbert", "their ModernBERT MICE has no adapter"),
    ):
        if params[name] not in (False, 1.0) and config.model_type == kind:
            logger.info("%s: %s=%s has no effect (%s); converted without it", ckpt.folder, name, params[name], why)
    options.update(overrides)
    tokenizer_dir = ckpt.find(TOKENIZER_FILES, under=ckpt.folder) or ckpt.find(TOKENIZER_FILES)
    tokenizer_source = os.path.dirname(tokenizer_dir) if tokenizer_dir else hf_id
    tokenizer = load_tokenizer(tokenizer_source)
    n_ctx = int(params["n_contextualization_layers"])
    k = params["n_interaction_layers"]
    encoder = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    model = model_class.from_encoder(encoder, tokenizer, n_ctx, None if k is None else int(k), **options)
    _check_head_config(ckpt, model)
    weights = ckpt.find(WEIGHT_FILES)
    if weights is None:
        raise AuthorsCheckpointError(
            f"{ckpt.folder}: no weights ({', '.join(WEIGHT_FILES)}) in the checkpoint folder "
            f"{', '.join(ckpt.data_paths.values()) or '(none named by the definition)'}"
        )
    if weights.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(weights)
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(convert_state_dict(state, model), strict=True)
    tok = ckpt.fields.get("tokenizer") if isinstance(ckpt.fields.get("tokenizer"), dict) else {}
    limit = config.max_position_embeddings
    longest = tok.get("max_length") or DEFAULT_TOKENIZER_LENGTH
    model.config.trained_lengths = {
        "query_max_length": min(tok.get("max_query_length") or longest, limit),
        "doc_max_length": min(tok.get("max_doc_length") or longest, limit),
    }
    model.config.authors_checkpoint = {
        "hf_id": ckpt.fields["hf_id"],
        "type": ckpt.model_type,
        "architecture": "MiceCrossEncoder",
        **{key: params[key] for key in NEWER_DEFAULTS},
    }
    return model.eval(), tokenizer_source


def _check_head_config(ckpt: AuthorsFolder, model) -> None:
    """The head (interaction-layer) config, when saved, must describe the interaction layers built."""
    path = ckpt.find(HEAD_CONFIGS) or ckpt.find((os.path.join("head", "config.json"),), under=ckpt.folder)
    if path is None:
        return
    head = read_config_dict(path)
    if model.config.backbone_type == "bert" and head.get("hidden_size") not in (None, model.interaction_width):
        raise AuthorsCheckpointError(
            f"{path}: interaction layers of hidden size {head['hidden_size']}, but "
            f"compress_dim={model.config.compress_dim} gives {model.interaction_width}"
        )
