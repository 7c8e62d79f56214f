"""The model families of the package, each declared once.

A model class joins with :func:`register_model` (its ``model_type`` is what a saved ``config.json``
names; the HF Auto classes learn it too). A family joins with :func:`register_family`, called once in
its re-ranker's module: its name (the one word for it in training configs, the command line and
messages), its model class, and the re-ranker that loads, trains and scores it. Every table of the
package reads this registry: loading a checkpoint, checking its kind, the training config's model
types and their option sections, and building a re-ranker from a config."""

from __future__ import annotations

import dataclasses

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


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: ``name``; ``model``, its model class (``model.description`` says what it is in
    words); ``reranker``, the re-ranker class that loads, trains and scores it; ``also``, other
    re-rankers of the same model (PreTTR's split path); ``build_hint``, how to build one from a
    cross-encoder, for the message that refuses another kind of checkpoint."""

    name: str
    model: type
    reranker: type
    also: tuple[type, ...] = ()
    build_hint: str | None = None

    @property
    def model_type(self) -> str:
        return self.model.config_class.model_type

    @property
    def description(self) -> str:
        return self.model.description

    @property
    def rerankers(self) -> tuple[type, ...]:
        return (self.reranker, *self.also)

    def load_with(self) -> str:
        """The re-rankers that load it, in words (``ColBERTReranker``)."""
        return " or ".join(r.__name__ for r in self.rerankers)


#: family name → family (filled as the re-ranker modules are imported)
FAMILIES: dict[str, Family] = {}


def register_family(
    name: str, model: type, reranker: type, *, also: tuple[type, ...] = (), build_hint: str | None = None
) -> Family:
    """Declare a model family (see :class:`Family`); the model class must be registered
    (:func:`register_model`)."""
    if MODEL_CLASSES.get(model.config_class.model_type) is not model:
        raise ValueError(f"register_family({name!r}): {model.__name__} is not registered (@register_model)")
    FAMILIES[name] = family = Family(name, model, reranker, tuple(also), build_hint)
    return family


def get_family(name: str) -> Family:
    """The family called ``name`` (a clear error listing the families otherwise)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model type {name!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_of_model_type(model_type: str) -> Family | None:
    """The family whose model a ``config.json`` of this ``model_type`` holds (None: a plain HF model)."""
    return next((f for f in FAMILIES.values() if f.model_type == model_type), None)
