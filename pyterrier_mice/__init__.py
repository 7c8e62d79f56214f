"""pyterrier-mice: MICE and attention-masked cross-encoders as PyTerrier re-rankers.

The names below are imported when first used (``import pyterrier_mice`` is instant); every model
family's model, config and re-ranker classes are exported too, read from the family registry."""

__version__ = "0.1.0"

import importlib
import importlib.util

#: the names exported here that are not a family's, by the module that defines them
_WHERE = {
    **{name: ".models" for name in ("POLICY_NAMES", "AttentionPolicy", "Block", "get_policy", "plot_policy")},
    **{name: ".rerankers" for name in ("BiEncoderReranker", "Reranker", "ScoreFusion", "load_reranker")},
    **{name: ".index" for name in ("MiceIndex", "MiceIndexError")},
    "open_dataset": ".evaluation.experiment",  # what a notebook needs beside the models
    "load_tokenizer": ".models.checkpoints",
    "Prior": ".models.prior",
}


def _family_exports() -> dict:
    """Each registered family's model, model config and re-ranker classes, by name."""
    importlib.import_module(".rerankers", __name__)  # its modules declare the families
    FAMILIES = importlib.import_module(".models.registry", __name__).FAMILIES
    out = {}
    for family in FAMILIES.values():
        for cls in (family.model, family.model.config_class, *family.rerankers):
            out[cls.__name__] = cls
    return out


def __getattr__(name: str):
    if name == "__all__":
        return sorted(set(_WHERE) | set(_family_exports()))
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a subpackage, asked for by name
        return importlib.import_module(f".{name}", __name__)
    elif not name.startswith("__"):
        value = _family_exports().get(name)
        if value is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(__getattr__("__all__")))
