"""HF checkpoints: what one holds (and the one clear error when it is not what the caller
needs), and loading encoders and tokenizers from a folder or hub id."""

from __future__ import annotations

import json
import os
import re

from .backbone import check_model_type
from .registry import MODEL_CLASSES, family_of_model_type

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
            trained = [n for n in ("final", "best") if os.path.exists(os.path.join(path, n, "config.json"))]
            if trained:
                raise FileNotFoundError(
                    f"{path!r} is a training run's folder, not a checkpoint: load its model, "
                    f"{os.path.join(path, trained[0])!r}"
                )
            raise FileNotFoundError(f"{path!r} holds no config.json: not a Hugging Face checkpoint folder")
        with open(cfg, encoding="utf8") as f:
            return json.load(f).get("model_type", "")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type


def describe(model_type: str) -> str:
    """What a checkpoint of this ``model_type`` holds, in words."""
    if model_type in MODEL_CLASSES:
        return MODEL_CLASSES[model_type].description
    return f"a plain Hugging Face {model_type!r} model (e.g. a cross-encoder)"


def check_model_kind(name_or_path, expected_cls, reranker_cls=None) -> None:
    """Raise a clear ``ValueError`` unless the checkpoint holds ``expected_cls``'s kind of model,
    saying which re-ranker loads what it holds, or how to build the expected kind from it."""
    expected = expected_cls.config_class.model_type
    found = model_type_of(name_or_path)
    if found == expected:
        return
    user = (reranker_cls or expected_cls).__name__
    msg = f"{user}: {os.fspath(name_or_path)!r} holds {describe(found)}, not {describe(expected)}"
    family, wanted = family_of_model_type(found), family_of_model_type(expected)
    hint = wanted.build_hint if wanted is not None else None
    if found in MODEL_CLASSES:
        if family is not None:
            msg += f"; load it with {family.load_with()}"
        if getattr(MODEL_CLASSES[found], "wraps_cross_encoder", False) and hint:
            msg += f", or {hint}"
    elif hint:
        msg += f"; {hint}, or use it as is with CrossEncoderReranker"
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


def load_encoder(name_or_path: str, num_labels: int = 1, require_head: bool = False, **kwargs):
    """A HF sequence-classification model from a hub id or local path; from a cross-encoder
    checkpoint of this package (masked or PreTTR), the encoder it wraps. A base encoder gets a fresh
    head to train, unless ``require_head`` (the model is to score as it is), which refuses any weight
    the checkpoint lacks: a randomly initialised head never scores."""
    from transformers import AutoConfig

    name_or_path = local_or_hub(name_or_path)
    config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    saved = MODEL_CLASSES.get(config.model_type)
    if saved is not None:
        if not getattr(saved, "wraps_cross_encoder", False):
            raise ValueError(
                f"{name_or_path!r} holds {describe(config.model_type)}, not an encoder or cross-encoder "
                "to build a model from"
            )
        return saved.from_pretrained(name_or_path, **kwargs).encoder
    check_model_type(config.model_type)
    kw = dict(kwargs)
    if not _has_classifier(config):
        if require_head:
            raise ValueError(f"{name_or_path!r} {NO_HEAD}")
        if getattr(config, "num_labels", None) != num_labels:
            kw["num_labels"] = num_labels
    from transformers import AutoModelForSequenceClassification

    from .base import quiet_transformers, refuse_missing_weights

    with quiet_transformers():
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, attn_implementation="sdpa", output_loading_info=True, **kw
        )
    if require_head:
        refuse_missing_weights(name_or_path, info)
    return model


#: why a base encoder (or a checkpoint lacking its head) cannot score, teach, or be derived from
NO_HEAD = (
    "has no classification head (a base encoder, not a cross-encoder): a randomly initialised head would "
    "score it; train it first (pyterrier-mice train), load a trained cross-encoder, or, for a "
    "sentence-embedding model, use BiEncoderReranker"
)


def encoder_num_layers(name_or_path: str) -> int:
    """How many transformer layers the encoder (or cross-encoder) that :func:`load_encoder` would
    load has, read from its config alone."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(local_or_hub(name_or_path))
    if config.model_type in MODEL_CLASSES:
        return int(config.backbone["num_hidden_layers"])
    return int(config.num_hidden_layers)


def has_classification_head(name_or_path: str) -> bool:
    """Whether a checkpoint scores pairs with a trained head: any model of this package, or a plain
    HF model saved as ``…ForSequenceClassification`` (a base encoder gets a random head)."""
    if model_type_of(name_or_path) in MODEL_CLASSES:  # a folder without config.json is an error naming it
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
