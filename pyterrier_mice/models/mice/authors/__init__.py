"""The MICE authors' checkpoints (their ``xpm_torch`` folders, local or on the hub) read into
:class:`~pyterrier_mice.MiceModel`: the files (:mod:`.layout`), their weights' names
(:mod:`.weights`), the paper's older architecture (:mod:`.older`) and their newer one (:mod:`.newer`).
``MiceModel.from_pretrained`` reads them through :func:`load_authors_mice`."""

from __future__ import annotations

from .layout import AuthorsCheckpointError, find_authors_checkpoint, read_folder
from .newer import load_newer_mice
from .older import load_older_mice, read_definition
from .weights import convert_state_dict, target_name

__all__ = [
    "AuthorsCheckpointError",
    "convert_state_dict",
    "find_authors_checkpoint",
    "load_authors_mice",
    "read_definition",
    "target_name",
]


def load_authors_mice(model_class, folder: str, backbone: str | None = None, **overrides):
    """``(model, tokenizer source)``: the authors' checkpoint in ``folder``, older or newer, as a
    ``model_class`` (:class:`~pyterrier_mice.MiceModel`). ``backbone`` replaces the definition's
    ``hf_id`` (e.g. a local copy of the base model, offline); ``overrides`` (newer architecture) are
    :class:`~pyterrier_mice.MiceConfig` fields set over the converted ones."""
    ckpt = read_folder(folder)
    if ckpt.is_newer:
        return load_newer_mice(model_class, ckpt, backbone, **overrides)
    if overrides:
        raise TypeError(f"unexpected arguments for the authors' older MICE: {sorted(overrides)}")
    return load_older_mice(model_class, ckpt, backbone)
