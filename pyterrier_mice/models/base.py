"""The shared base of this package's HF models: a config embedding the backbone's config, and a
``PreTrainedModel`` owning a HF sequence-classification backbone (``save_pretrained`` /
``from_pretrained`` round-trip every model here)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import typing

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from .attention import and_masks, padding_mask_or_none, window_mask
from .backbone import adapter, check_model_type


@contextlib.contextmanager
def quiet_transformers():
    """Within this block, transformers shows no progress bars (weights loading/writing) and no
    load reports (this package says what matters itself); the caller's settings are restored after."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity(max(level, hf_logging.ERROR))
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def refuse_missing_weights(name_or_path, loading_info: dict) -> None:
    """Refuse a checkpoint whose weights file lacks tensors of the model it declares (they would be
    initialised at random and score)."""
    missing = sorted(loading_info.get("missing_keys") or ())
    if missing:
        raise ValueError(
            f"{os.fspath(name_or_path)!r}: its weights lack {len(missing)} tensor(s) of the model it declares "
            f"(e.g. {missing[0]!r}), which would be initialised at random and score; the checkpoint is "
            "incomplete or not the model its config.json names"
        )


class BackboneConfig(PretrainedConfig):
    """Config holding the backbone's full HF config (``backbone``) and the tokenizer's special ids.

    A subclass's own ``__init__`` arguments are its family's options (:meth:`option_types`): what a
    training config sets in its ``model.<family>`` section, checked by constructing the config."""

    #: ``__init__`` arguments that are no user option (taken from the tokenizer, or read from old configs)
    NOT_OPTIONS: tuple[str, ...] = ()

    def __init__(
        self, backbone: dict | None = None, cls_token_id: int | None = None, sep_token_id: int | None = None, **kwargs
    ):
        if isinstance(backbone, PretrainedConfig):
            backbone = backbone.to_dict()
        self.backbone = backbone
        if backbone is not None:
            check_model_type(backbone.get("model_type"))
        super().__init__(cls_token_id=cls_token_id, sep_token_id=sep_token_id, **kwargs)

    @classmethod
    @functools.cache
    def option_types(cls) -> dict[str, object]:
        """Every option a user sets (the named arguments of this class's own ``__init__`` but
        :data:`NOT_OPTIONS`), with its type: the one list of a family's options."""
        if "__init__" not in cls.__dict__ or cls is BackboneConfig:
            return {}
        hints = typing.get_type_hints(cls.__init__)
        return {
            name: hints.get(name, object)
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD and name not in cls.NOT_OPTIONS
        }

    @classmethod
    def option_defaults(cls) -> dict[str, object]:
        params = inspect.signature(cls.__init__).parameters
        return {name: params[name].default for name in cls.option_types()}

    def options(self) -> dict[str, object]:
        """This config's value of every option (as resolved: e.g. the ``[CLS]`` mode chosen for None)."""
        return {name: getattr(self, name) for name in self.option_types()}

    @classmethod
    def checked_options(cls, options: dict) -> dict:
        """``options`` as this config resolves them (the backbone aside); an undefined value or
        combination raises ``ValueError``."""
        return cls(**options).options()

    def backbone_config(self) -> PretrainedConfig:
        d = dict(self.backbone)
        return AutoConfig.for_model(d.pop("model_type"), **d)

    @property
    def backbone_type(self) -> str:
        return self.backbone["model_type"]


class BackboneModel(PreTrainedModel):
    """A ``PreTrainedModel`` owning ``self.encoder``, a HF ``*ForSequenceClassification``."""

    config_class = BackboneConfig
    #: what a checkpoint of this model holds, in words (for messages)
    description = "a model of this package"
    #: whether ``self.encoder`` is a whole cross-encoder (what an encoder or cross-encoder checkpoint loads as)
    wraps_cross_encoder = False
    base_model_prefix = "mice"
    supports_gradient_checkpointing = False
    _supports_sdpa = True

    def __init__(self, config: BackboneConfig, encoder: nn.Module | None = None):
        super().__init__(config)
        if encoder is None:
            encoder = AutoModelForSequenceClassification.from_config(config.backbone_config())
        self.encoder = encoder
        self.backbone = adapter(encoder)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """HF's, with its load report replaced by a refusal of any weight the checkpoint lacks (it would
        be initialised at random and score)."""
        asked = kwargs.pop("output_loading_info", False)
        with quiet_transformers():
            model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        refuse_missing_weights(args[0] if args else kwargs.get("pretrained_model_name_or_path"), info)
        return (model, info) if asked else model

    def save_pretrained(self, *args, **kwargs):
        with quiet_transformers():
            return super().save_pretrained(*args, **kwargs)

    def _init_weights(self, module):
        # New modules of this package (e.g. a ColBERT projection) use the backbone's init.
        self.encoder._init_weights(module)

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def encode_sequences(
        self,
        input_ids,
        attention_mask,
        num_layers: int,
        token_type: int = 0,
        position_ids=None,
        unmasked_local_layers: bool = False,
        layers=None,
        local_window: bool = True,
    ) -> torch.Tensor:
        """States after the first ``num_layers`` layers (of ``layers``, default the backbone's) of
        single sequences (no segments): full attention over the valid tokens, ModernBERT's window on
        local layers (none with ``local_window=False``; no mask at all there with
        ``unmasked_local_layers``, the older MICE reference implementation's quirk)."""
        bb = self.backbone
        layers = bb.layers if layers is None else layers
        n = input_ids.shape[1]
        x = bb.embed(input_ids, torch.full_like(input_ids, token_type), position_ids)
        base = padding_mask_or_none(attention_mask, n)
        for i in range(num_layers):
            hw = bb.half_window(i)
            if hw is not None and unmasked_local_layers:
                mask = None
            elif hw is not None and local_window:
                mask = and_masks(base, window_mask(n, hw, x.device))
            else:
                mask = base
            x, _ = bb.layer_forward(layers[i], i, x, mask, position_ids)
        return x


def special_ids(tokenizer) -> dict:
    """``cls_token_id``/``sep_token_id`` of a tokenizer, with a clear error when missing."""
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(
            f"tokenizer {tokenizer.name_or_path!r} has no [CLS]/[SEP] tokens; only BERT-style pair inputs are supported"
        )
    return {"cls_token_id": tokenizer.cls_token_id, "sep_token_id": tokenizer.sep_token_id}
