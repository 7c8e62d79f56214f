"""The MICE authors' tensor names (older and newer architectures) mapped onto
:class:`~pyterrier_mice.MiceModel`'s, every tensor accounted for."""

from __future__ import annotations

import re

import torch

from .layout import AuthorsCheckpointError

# derived buffers a state dict may carry, recomputed from the config
_DERIVED = re.compile(r"(^|\.)(position_ids|token_type_ids|inv_freq|\w*_inv_freq)$")
_TOP = re.compile(r"top_layers\.(\d+)\.(.+)$")


def target_name(key: str, model_type: str) -> str | None:
    """This package's name for one of the authors' tensors (None: no counterpart)."""
    base = {"bert": "encoder.bert", "modernbert": "encoder.model"}[model_type]
    layers = f"{base}.encoder.layer" if model_type == "bert" else f"{base}.layers"
    m = _TOP.match(key)
    if m:
        i, rest = m.groups()
        if rest == "crossattention.lexical_bias_weight":
            return f"interaction.{i}.lexical_bias"
        if rest.startswith("crossattention."):
            return f"interaction.{i}.cross.{rest[len('crossattention.') :]}"
        return f"interaction.{i}.layer.{rest}"
    m = re.match(r"exact_match_heads\.(\d+)\.(.+)$", key)
    if m:
        return f"interaction.{m.group(1)}.exact_match.{m.group(2)}"
    if key == "global_cls":
        return "global_cls"
    for prefix, target in (
        ("embeddings.", f"{base}.embeddings."),
        ("bottom_layers.", f"{layers}."),
        ("document_bottom_layers.", f"{layers}."),
        ("query_bottom_layers.", "query_layers."),
        ("pooler.", f"{base}.pooler."),
        ("final_norm.", f"{base}.final_norm."),
        ("head.", "encoder.head."),
        ("classifier.", "encoder.classifier."),
        ("adapter.", "adapter."),
    ):
        if key.startswith(prefix):
            return target + key[len(prefix) :]
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
        target = target_name(key, model_type)
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
    bad_shapes = [
        f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in out.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if unmapped or missing or bad_shapes:
        parts = []
        if unmapped:
            parts.append(
                f"{len(unmapped)} checkpoint tensor(s) with no place in the model: {', '.join(sorted(unmapped))}"
            )
        if missing:
            parts.append(f"{len(missing)} model weight(s) absent from the checkpoint: {', '.join(missing)}")
        if bad_shapes:
            parts.append(f"shape mismatches: {'; '.join(bad_shapes)}")
        raise AuthorsCheckpointError("cannot convert the authors' checkpoint: " + "; ".join(parts))
    # derived buffers are recomputed by the model itself
    out.update({k: v for k, v in model.state_dict().items() if _DERIVED.search(k)})
    return out
