"""HF checkpoints: what one holds (and the one clear error when it is not what the caller
needs), loading encoders and tokenizers from a folder or hub id, and the hook through which the
loaders layer reads other code's checkpoints.

Models layer: imports only :mod:`.backbone`, :mod:`.base` and :mod:`.registry`."""

from __future__ import annotations

import json
import os
import re
import warnings

from .backbone import check_model_type
from .registry import MODEL_CLASSES

#: the longest pair a cross-encoder reads by default (its position limit, capped here)
MAX_PAIR_LENGTH = 1024
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)

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


#: model_type → readers of checkpoints saved by other code (see :func:`register_checkpoint_reader`)
_READERS: dict[str, list] = {}


def register_checkpoint_reader(model_type: str, reader) -> None:
    """Let ``from_pretrained`` of ``model_type`` read checkpoints saved by other code: ``reader(name_or_path,
    **kwargs)`` returns the model, or None when the checkpoint is not one it reads. The readers live
    in :mod:`pyterrier_mice.loaders` (the MICE authors' formats), a layer above the models."""
    _READERS.setdefault(model_type, []).append(reader)


def _load_declared_readers() -> None:
    """Register the readers that installed packages declare (entry points of the group
    ``pyterrier_mice.checkpoint_readers``, ``model_type = module:function``; this package declares
    the MICE authors' formats), once."""
    if _READERS_DECLARED:
        return
    _READERS_DECLARED.append(True)
    from importlib.metadata import entry_points

    for ep in entry_points(group="pyterrier_mice.checkpoint_readers"):
        reader = ep.load()  # importing the module may register it already (pyterrier_mice.loaders does)
        if reader not in _READERS.get(ep.name, ()):
            register_checkpoint_reader(ep.name, reader)


_READERS_DECLARED: list = []


def read_foreign_checkpoint(model_type: str, name_or_path, **kwargs):
    """The model a registered reader makes of ``name_or_path``, or None."""
    _load_declared_readers()
    for reader in _READERS.get(model_type, ()):
        model = reader(name_or_path, **kwargs)
        if model is not None:
            return model
    return None


#: seconds to wait for the hub to say whether a repository exists (then its files download as usual)
HUB_TIMEOUT = 10


def local_or_hub(name_or_path) -> str:
    """``name_or_path`` as a string; a local path that does not exist is an error, and so is a hub id
    (``org/name``) that neither the hub nor its local cache can give (see :func:`hub_files`)."""
    path = os.fspath(name_or_path)
    if os.path.exists(path):
        return path
    if path.startswith((".", "/", "~")) or path.count("/") > 1 or not _HUB_ID.match(path):
        raise FileNotFoundError(
            f"checkpoint {path!r} does not exist (no such folder; a hub id has the form 'org/name')"
        )
    hub_files(path)
    return path


def hub_files(repo_id: str) -> list[str]:
    """The files of a hub repository: from the hub, asked once (no retries, :data:`HUB_TIMEOUT`), or
    from the local hub cache when the hub is off or out of reach. Neither is one line saying what was
    tried (rather than minutes of retried downloads and a long transformers error)."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import RepositoryNotFoundError

    offline = bool(constants.HF_HUB_OFFLINE)
    key = (repo_id, constants.HF_HUB_CACHE, offline)
    if key in _HUB_FILES:
        return _HUB_FILES[key]
    if not offline:
        try:
            info = huggingface_hub.HfApi().model_info(repo_id, timeout=HUB_TIMEOUT)
            _HUB_FILES[key] = [s.rfilename for s in info.siblings or []]
            return _HUB_FILES[key]
        except RepositoryNotFoundError:
            raise FileNotFoundError(
                f"{repo_id!r} is no local folder, and the hub has no such repository (or it is "
                "private: log in with `hf auth login`)"
            ) from None
        except Exception:  # no network, a proxy, a timeout: fall back on the cache
            pass
    cached = _cached_files(repo_id, constants.HF_HUB_CACHE)
    if cached is None:
        why = "the hub is off (HF_HUB_OFFLINE=1)" if offline else "the hub could not be reached"
        raise FileNotFoundError(
            f"{repo_id!r} could not be loaded: it is no local folder, not in the local hub cache "
            f"({constants.HF_HUB_CACHE}), and {why}; pass a local folder, or connect and retry"
        )
    _HUB_FILES[key] = cached
    return cached


_HUB_FILES: dict = {}


def _cached_files(repo_id: str, cache: str) -> list[str] | None:
    """The files of ``repo_id``'s cached snapshot of ``main`` (None when not cached)."""
    repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    try:
        with open(os.path.join(repo, "refs", "main"), encoding="utf8") as f:
            snapshot = os.path.join(repo, "snapshots", f.read().strip())
    except OSError:
        return None
    if not os.path.isdir(snapshot):
        return None
    return [os.path.relpath(os.path.join(d, n), snapshot) for d, _, names in os.walk(snapshot) for n in names]


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
            "beside the model (tokenizer.save_pretrained(path)) or pass tokenizer="
        )


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
    return min(
        backbone_setting(name_or_path, "max_position_embeddings"),
        MAX_PAIR_LENGTH,
        trained_length(name_or_path) or MAX_PAIR_LENGTH,
    )


def num_backbone_layers(name_or_path) -> int:
    """The number of layers of a checkpoint's backbone."""
    return backbone_setting(name_or_path, "num_hidden_layers")


def load_encoder(name_or_path: str, num_labels: int = 1, warn_new_head: bool = False, **kwargs):
    """A HF sequence-classification model from a hub id or local path (a fresh head if absent,
    with a warning if ``warn_new_head``); from a cross-encoder checkpoint of this package (masked
    or PreTTR), the encoder it wraps."""
    from transformers import AutoConfig

    name_or_path = local_or_hub(name_or_path)
    config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    if config.model_type in KINDS and config.model_type not in _WRAPPED_CROSS_ENCODERS:
        raise ValueError(
            f"{name_or_path!r} holds {KINDS[config.model_type][0]}, not an encoder or cross-encoder "
            "to build a model from"
        )
    if config.model_type in _WRAPPED_CROSS_ENCODERS:
        return MODEL_CLASSES[config.model_type].from_pretrained(name_or_path, **kwargs).encoder
    check_model_type(config.model_type)
    kw = dict(kwargs)
    if not _has_classifier(config):
        if getattr(config, "num_labels", None) != num_labels:
            kw["num_labels"] = num_labels
        if warn_new_head:
            warnings.warn(
                f"{name_or_path!r} has no classification head (it is a base encoder, not a cross-encoder): "
                "a random head was initialised, so its scores mean nothing until it is trained",
                stacklevel=3,
            )
    from transformers import AutoModelForSequenceClassification

    from .base import quiet_transformers

    with quiet_transformers():
        return AutoModelForSequenceClassification.from_pretrained(name_or_path, attn_implementation="sdpa", **kw)


_WRAPPED_CROSS_ENCODERS = ("masked_cross_encoder", "mice_prettr")


def encoder_num_layers(name_or_path: str) -> int:
    """How many transformer layers the encoder (or cross-encoder) that :func:`load_encoder` would
    load has, read from its config alone."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(local_or_hub(name_or_path))
    if config.model_type in _WRAPPED_CROSS_ENCODERS:
        return int(config.backbone["num_hidden_layers"])
    return int(config.num_hidden_layers)


def has_classification_head(name_or_path: str) -> bool:
    """Whether a checkpoint scores pairs with a trained head: any model of this package, or a plain
    HF model saved as ``…ForSequenceClassification`` (a base encoder gets a random head)."""
    if model_type_of(name_or_path) in KINDS:  # a folder without config.json is an error naming it
        return True
    from transformers import AutoConfig

    return _has_classifier(AutoConfig.from_pretrained(local_or_hub(name_or_path)))


def _has_classifier(config) -> bool:
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith("ForSequenceClassification") for a in archs)


def load_tokenizer(name_or_path: str, **kwargs):
    """The tokenizer saved with a checkpoint (a clear error when a local folder has none)."""
    from transformers import AutoTokenizer

    name_or_path = local_or_hub(name_or_path)
    check_tokenizer_files(name_or_path)
    return AutoTokenizer.from_pretrained(name_or_path, **kwargs)
