"""The folders the MICE authors' ``xpm_torch`` code saves (experimaestro definitions), locally or on
the hub. A definition is a JSON list of objects (or ``{"objects": [...], "data": ...}``); a data path
is a ``{"type": "path.serialized"}`` field, stored under the field's name; the model object has ``hf_id``.

- older (``MidFusionCrossEncoder``, ``xpmTorchHubModule``): ``definition.json``, and the Loader's
  ``parameters`` field names the file ``parameters`` (``torch.save`` state dict, no extension);
- newer (``MiceCrossEncoder``, ``TorchHFHub(SimpleModuleLoader).save_pretrained``; read at xpmir/mice
  b4dc361, experimaestro/xpm-torch, experimaestro-python): ``experimaestro.json`` (``definition.json``
  with older experimaestro; the tokenizer, model and loader objects), ``path/`` (the loader's ``path``:
  ``model.safetensors``, ``contextualization_layers/config.json`` the base config,
  ``interaction_layers/config.json`` the head config, tokenizer files; ``model/model.safetensors`` or
  ``model.pth`` from a plain ModuleLoader), and from ``write_hub_extras`` ``config.json``,
  ``head/config.json``, the tokenizer files and ``README.md``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

DEFINITIONS = ("experimaestro.json", "definition.json")  # newer experimaestro first
OLDER_WEIGHTS = "parameters"
WEIGHT_FILES = ("model.safetensors", os.path.join("model", "model.safetensors"), "model.pth")
BASE_CONFIGS = (os.path.join("contextualization_layers", "config.json"),)
HEAD_CONFIGS = (os.path.join("interaction_layers", "config.json"),)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


class AuthorsCheckpointError(ValueError):
    """A checkpoint in the authors' layout that cannot be converted faithfully."""


@dataclass
class AuthorsFolder:
    """An authors' checkpoint folder, read: the model object's type and fields (references
    resolved to the referenced objects' fields) and the data paths of every object."""

    folder: str
    definition: str
    model_type: str
    fields: dict
    data_paths: dict[str, str] = field(default_factory=dict)  # field name → path in the folder

    def path(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts)

    def find(self, candidates, under=None) -> str | None:
        """The first existing file among ``candidates``, under each data folder then the root."""
        roots = [p for p in self.data_paths.values() if os.path.isdir(p)] if under is None else [under]
        for root in [*roots, self.folder]:
            for name in candidates:
                full = os.path.join(root, name)
                if os.path.exists(full):
                    return full
        return None

    @property
    def is_newer(self) -> bool:
        """The newer ``MiceCrossEncoder`` (n_contextualization_layers), not the paper's MidFusion."""
        return "merge_layer" not in self.fields and (
            "n_contextualization_layers" in self.fields or self.model_type.endswith("MiceCrossEncoder")
        )


def definition_file(folder: str) -> str | None:
    for name in DEFINITIONS:
        if os.path.exists(os.path.join(folder, name)):
            return name
    return None


def find_authors_checkpoint(name_or_path) -> str | None:
    """The local folder of an authors' checkpoint (fetched from the hub for a hub id), or None
    when ``name_or_path`` is anything else."""
    from ...checkpoints import hub_files, local_or_hub

    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        if definition_file(path):
            return path
        if is_training_checkpoint(path):
            raise training_checkpoint_error(path)
        return None
    if os.path.exists(path) or path.count("/") != 1 or path.startswith((".", "/")):
        return None
    local_or_hub(path)  # an unreachable id is one clear error here
    if not any(name in hub_files(path) for name in DEFINITIONS):
        return None
    from huggingface_hub import snapshot_download

    return snapshot_download(path)


def is_training_checkpoint(folder: str) -> bool:
    """Whether ``folder`` is what the authors' ``save_model`` writes (the ``path/`` of their hub
    folder): weights and the two sub-configs, without the model's definition."""
    return any(os.path.exists(os.path.join(folder, w)) for w in WEIGHT_FILES) and all(
        os.path.exists(os.path.join(folder, c[0])) for c in (BASE_CONFIGS, HEAD_CONFIGS)
    )


def training_checkpoint_error(folder: str) -> AuthorsCheckpointError:
    parent = os.path.dirname(os.path.abspath(folder))
    instead = (
        f"load {parent!r} instead, the folder their save_pretrained wrote around it"
        if definition_file(parent)
        else "load the folder their save_pretrained wrote (it holds experimaestro.json and this folder as "
        "path/), or the hub id it was published under"
    )
    return AuthorsCheckpointError(
        f"{folder!r} is the MICE authors' training checkpoint (their save_model: weights, tokenizer and the two "
        f"sub-configs, without the options the model was built with, which {' and '.join(DEFINITIONS)} hold); "
        f"{instead}"
    )


def read_folder(folder: str) -> AuthorsFolder:
    """Read an authors' checkpoint folder's definition (see the module docstring)."""
    name = definition_file(folder)
    if name is None:
        raise AuthorsCheckpointError(f"{folder}: no {' or '.join(DEFINITIONS)}; not an authors' checkpoint")
    try:
        with open(os.path.join(folder, name), encoding="utf8") as f:
            definition = json.load(f)
    except (OSError, ValueError) as e:
        raise AuthorsCheckpointError(f"{folder}/{name}: unreadable definition ({e})") from e
    objects = definition.get("objects", []) if isinstance(definition, dict) else definition
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise AuthorsCheckpointError(f"{folder}/{name}: not an experimaestro definition (expected a list of objects)")
    by_id = {o.get("id"): o for o in objects}
    models = [o for o in objects if "hf_id" in o.get("fields", {})]
    if not models:
        raise AuthorsCheckpointError(f"{folder}/{name}: no object with an 'hf_id' field; not a MICE checkpoint")
    model = models[0]

    def resolve(value):
        if isinstance(value, dict) and value.get("type") == "python":
            target = by_id.get(value.get("value"))
            return {k: resolve(v) for k, v in target.get("fields", {}).items()} if target else None
        return value

    data_paths = {}
    for obj in objects:
        for key, value in obj.get("fields", {}).items():
            if isinstance(value, dict) and value.get("type") == "path.serialized":
                data_paths[key] = os.path.join(folder, value["value"])
    fields = {k: resolve(v) for k, v in model.get("fields", {}).items()}
    return AuthorsFolder(folder, name, str(model.get("type", "")), fields, data_paths)


def read_config_dict(path: str) -> dict:
    with open(path, encoding="utf8") as f:
        return json.load(f)
