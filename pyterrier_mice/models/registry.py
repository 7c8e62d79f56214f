"""The models of this package by ``model_type``, filled by :func:`register_model` as each model
module is imported, and known to the HF Auto classes.

Models layer: imports no other module of the package."""

from __future__ import annotations

#: model_type → model class (filled as the model modules are imported)
MODEL_CLASSES: dict[str, type] = {}


def register_model(model_cls: type) -> type:
    """Class decorator: record a ``PreTrainedModel`` under its config's ``model_type`` and register
    both with ``AutoConfig``/``AutoModel`` (so ``from_pretrained`` finds saved models)."""
    from transformers import AutoConfig, AutoModel

    config_cls = model_cls.config_class
    MODEL_CLASSES[config_cls.model_type] = model_cls
    AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
    AutoModel.register(config_cls, model_cls, exist_ok=True)
    return model_cls
