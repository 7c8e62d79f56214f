"""The MICE authors' older checkpoints (the paper's ``MidFusionCrossEncoder``) converted to
:class:`~pyterrier_mice.MiceModel`, their numerics kept."""

from __future__ import annotations

import os

import torch

from .layout import OLDER_WEIGHTS, AuthorsCheckpointError, AuthorsFolder, read_folder
from .weights import convert_state_dict

# the paper's MidFusionCrossEncoder parameters and their defaults
DEFAULTS = {
    "merge_layer": 6,
    "drop_layer": 0,
    "mask_cls_to_doc": True,
    "mask_query_to_cls": True,
    "use_self_attention": True,
    "compress_dim": 1.0,
    "pooling_method": None,
}


def read_definition(folder: str) -> tuple[dict, str]:
    """The older model's parameters (defaults filled in) and its weights file, from its definition."""
    ckpt = read_folder(folder)
    return _older_params(ckpt), _older_weights(ckpt)


def _older_params(ckpt: AuthorsFolder) -> dict:
    params = {**DEFAULTS, **{k: v for k, v in ckpt.fields.items() if k in DEFAULTS or k == "hf_id"}}
    params["type"] = ckpt.model_type
    return params


def _older_weights(ckpt: AuthorsFolder) -> str:
    """The file the loader's ``path.serialized`` field names (``parameters``, the field's name)."""
    paths = [p for p in ckpt.data_paths.values() if not os.path.isdir(p)]
    return paths[0] if paths else ckpt.path(OLDER_WEIGHTS)


def load_older_mice(model_class, ckpt: AuthorsFolder, backbone: str | None):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ...checkpoints import load_tokenizer

    folder, params, weights = ckpt.folder, _older_params(ckpt), _older_weights(ckpt)
    hf_id = backbone or params["hf_id"]
    if float(params["compress_dim"]) != 1.0:
        raise AuthorsCheckpointError(
            f"{folder}: compress_dim={params['compress_dim']} (compressed top layers) "
            "is not supported for the older architecture"
        )
    config = AutoConfig.from_pretrained(hf_id)
    config.num_labels = 1
    if config.model_type == "modernbert":
        if params["pooling_method"] not in (None, "cls") or (
            params["pooling_method"] is None and config.classifier_pooling != "cls"
        ):
            raise AuthorsCheckpointError(
                f"{folder}: Ettin MICE with mean pooling (the authors' unmasked mean over "
                "padded query positions) is not supported; only cls pooling"
            )
        if not params["mask_cls_to_doc"]:
            raise AuthorsCheckpointError(f"{folder}: Ettin MICE with mask_cls_to_doc=False is not supported")
    if not os.path.exists(weights):
        raise AuthorsCheckpointError(
            f"{folder}: the weights file {os.path.basename(weights)!r} named by {ckpt.definition} is missing"
        )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    total = config.num_hidden_layers
    merge, drop = int(params["merge_layer"]), int(params["drop_layer"])
    tokenizer = load_tokenizer(hf_id)
    encoder = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    model = model_class.from_encoder(
        encoder,
        tokenizer,
        merge,
        (drop or total) - merge,
        cls_cross_attention="reference" if params["mask_cls_to_doc"] else "attend",
        query_reads_cls=not params["mask_query_to_cls"],
        interaction_self_attention=bool(params["use_self_attention"]),
        unmasked_local_layers=config.model_type == "modernbert",
    )
    model.load_state_dict(convert_state_dict(state, model), strict=True)
    model.config.authors_checkpoint = {
        "hf_id": params["hf_id"],
        "type": params["type"],
        "merge_layer": merge,
        "drop_layer": drop,
    }
    return model.eval(), hf_id
