"""The MICE authors' checkpoints (``xpmir/mice``, saved by ``xpm_torch``), converted to :class:`MiceModel`.

Such a checkpoint is an experimaestro-serialized folder (locally, or a hub repository):

- ``definition.json``: ``{"objects": [...], "data": ...}``; one object is the model, whose
  ``fields`` hold its parameters (``hf_id``, ``merge_layer``, ``drop_layer``,
  ``mask_cls_to_doc``, ``mask_query_to_cls``, ``use_self_attention``, ``compress_dim``, …); a
  loader object points at the weights file (a ``path.serialized`` field);
- ``parameters.pth``: ``torch.save`` of the module's state dict, in the authors' names
  (``embeddings.*``, ``bottom_layers.{i}.*``, ``top_layers.{i}.*``, then ``pooler.*`` +
  ``classifier.*`` for MiniLM, or ``final_norm.*`` + ``head.*`` + ``classifier.*`` for Ettin).

The conversion keeps the authors' numerics: ``cls_cross_attention="reference"`` (their blocked
``[CLS]`` row), and for ModernBERT their unmasked local layers. Every tensor of the checkpoint
must map onto the model and every weight of the model must come from the checkpoint; anything
else is an error listing the tensors. The tokenizer is ``hf_id``'s.
"""
from __future__ import annotations

import json
import os
import re

import torch

DEFINITION = "definition.json"
PARAMETERS = "parameters.pth"

# the paper's MidFusionCrossEncoder parameters and their defaults
DEFAULTS = {"merge_layer": 6, "drop_layer": 0, "mask_cls_to_doc": True, "mask_query_to_cls": True,
            "use_self_attention": True, "compress_dim": 1.0, "pooling_method": None}
# derived buffers a state dict may carry, recomputed from the config
_DERIVED = re.compile(r"(^|\.)(position_ids|token_type_ids|inv_freq|\w*_inv_freq)$")


class AuthorsCheckpointError(ValueError):
    """A checkpoint in the authors' layout that cannot be converted faithfully."""


def find_authors_checkpoint(name_or_path) -> str | None:
    """The local folder of an authors' checkpoint (fetched from the hub for a hub id), or None
    when ``name_or_path`` is anything else."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        return path if os.path.exists(os.path.join(path, DEFINITION)) else None
    if os.path.exists(path) or path.count("/") != 1 or path.startswith((".", "/")):
        return None
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
        hf_hub_download(path, DEFINITION)
        return snapshot_download(path)
    except Exception:  # not such a repository, or the hub is out of reach: the usual loading decides
        return None


def read_definition(folder: str) -> tuple[dict, str]:
    """The model's parameters (defaults filled in) and the weights file, from ``definition.json``."""
    with open(os.path.join(folder, DEFINITION), encoding="utf8") as f:
        definition = json.load(f)
    objects = definition.get("objects", []) if isinstance(definition, dict) else []
    models = [o for o in objects if "hf_id" in o.get("fields", {})]
    if not models:
        raise AuthorsCheckpointError(f"{folder}/{DEFINITION}: no object with an 'hf_id' field; not a MICE checkpoint")
    fields = models[0]["fields"]
    if "merge_layer" not in fields and "n_contextualization_layers" in fields:
        raise AuthorsCheckpointError(
            f"{folder}: a checkpoint of the authors' later MICE code (src/MICE: n_contextualization_layers, "
            "cross-attention before self-attention), whose architecture is not the paper's; only the paper's "
            "MidFusionCrossEncoder (merge_layer, drop_layer) is supported")
    params = {**DEFAULTS, **{k: v for k, v in fields.items() if k in DEFAULTS or k == "hf_id"}}
    params["type"] = models[0].get("type", "")
    weights = PARAMETERS
    for obj in objects:
        for value in obj.get("fields", {}).values():
            if isinstance(value, dict) and value.get("type") == "path.serialized":
                weights = value["value"]
    return params, os.path.join(folder, weights)


def load_authors_mice(folder: str, backbone: str | None = None):
    """``(MiceModel, tokenizer source)`` from an authors' checkpoint folder. ``backbone``
    replaces the definition's ``hf_id`` (e.g. a local copy of the base model, offline)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from .modeling_base import load_tokenizer
    from .modeling_mice import MiceModel

    params, weights = read_definition(folder)
    hf_id = backbone or params["hf_id"]
    if float(params["compress_dim"]) != 1.0:
        raise AuthorsCheckpointError(f"{folder}: compress_dim={params['compress_dim']} (compressed top layers) "
                                     "is not supported")
    config = AutoConfig.from_pretrained(hf_id)
    config.num_labels = 1
    if config.model_type == "modernbert":
        if params["pooling_method"] not in (None, "cls") or (params["pooling_method"] is None
                                                            and config.classifier_pooling != "cls"):
            raise AuthorsCheckpointError(f"{folder}: Ettin MICE with mean pooling (the authors' unmasked mean over "
                                         "padded query positions) is not supported; only cls pooling")
        if not params["mask_cls_to_doc"]:
            raise AuthorsCheckpointError(f"{folder}: Ettin MICE with mask_cls_to_doc=False is not supported")
    if not os.path.exists(weights):
        raise AuthorsCheckpointError(f"{folder}: the weights file {os.path.basename(weights)!r} named by "
                                     f"{DEFINITION} is missing")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    total = config.num_hidden_layers
    merge, drop = int(params["merge_layer"]), int(params["drop_layer"])
    tokenizer = load_tokenizer(hf_id)
    encoder = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    model = MiceModel.from_encoder(
        encoder, tokenizer, merge, (drop or total) - merge,
        cls_cross_attention="reference" if params["mask_cls_to_doc"] else "attend",
        query_reads_cls=not params["mask_query_to_cls"],
        interaction_self_attention=bool(params["use_self_attention"]),
        unmasked_local_layers=config.model_type == "modernbert")
    model.load_state_dict(convert_state_dict(state, model), strict=True)
    model.config.authors_checkpoint = {"hf_id": params["hf_id"], "type": params["type"],
                                       "merge_layer": merge, "drop_layer": drop}
    return model.eval(), hf_id


def _target_name(key: str, model_type: str) -> str | None:
    """This package's name for one of the authors' tensors (None: no counterpart)."""
    base = {"bert": "encoder.bert", "modernbert": "encoder.model"}[model_type]
    m = re.match(r"top_layers\.(\d+)\.(crossattention)\.(.+)$", key) or re.match(r"top_layers\.(\d+)\.()(.+)$", key)
    if m:
        i, cross, rest = m.groups()
        return f"interaction.{i}.cross.{rest}" if cross else f"interaction.{i}.layer.{rest}"
    layers = "encoder.layer" if model_type == "bert" else "layers"
    for prefix, target in (("embeddings.", f"{base}.embeddings."), ("bottom_layers.", f"{base}.{layers}."),
                           ("pooler.", f"{base}.pooler."), ("final_norm.", f"{base}.final_norm."),
                           ("head.", "encoder.head."), ("classifier.", "encoder.classifier.")):
        if key.startswith(prefix):
            return target + key[len(prefix):]
    return None


def convert_state_dict(state: dict, model) -> dict:
    """The authors' state dict in ``model``'s names; ModernBERT's separate cross-attention
    ``q_proj``/``k_proj``/``v_proj`` are stacked into ``Wqkv``. Unmapped or missing tensors raise
    :class:`AuthorsCheckpointError` listing them."""
    model_type = model.config.backbone_type
    expected = {k: v for k, v in model.state_dict().items() if not _DERIVED.search(k)}
    out, unmapped, qkv = {}, [], {}
    for key, value in state.items():
        if _DERIVED.search(key):
            continue
        m = re.match(r"top_layers\.(\d+)\.crossattention\.([qkv])_proj\.(weight|bias)$", key)
        if m and model_type == "modernbert":
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
            continue
        target = _target_name(key, model_type)
        if target is None or target not in expected:
            unmapped.append(key)
        else:
            out[target] = value
    for (i, kind), parts in qkv.items():
        target = f"interaction.{i}.cross.Wqkv.{kind}"
        if set(parts) != {"q", "k", "v"} or target not in expected:
            unmapped += [f"top_layers.{i}.crossattention.{p}_proj.{kind}" for p in sorted(parts)]
        else:
            out[target] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    missing = sorted(set(expected) - set(out))
    bad_shapes = [f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in out.items()
                  if tuple(v.shape) != tuple(expected[k].shape)]
    if unmapped or missing or bad_shapes:
        parts = []
        if unmapped:
            parts.append(f"{len(unmapped)} checkpoint tensor(s) with no place in the model: {', '.join(sorted(unmapped))}")
        if missing:
            parts.append(f"{len(missing)} model weight(s) absent from the checkpoint: {', '.join(missing)}")
        if bad_shapes:
            parts.append(f"shape mismatches: {'; '.join(bad_shapes)}")
        raise AuthorsCheckpointError("cannot convert the authors' checkpoint: " + "; ".join(parts))
    # derived buffers are recomputed by the model itself
    out.update({k: v for k, v in model.state_dict().items() if _DERIVED.search(k)})
    return out
