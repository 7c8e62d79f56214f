"""The module paths of the package before it was split into layers, resolved to where their code
lives now, so that imports, pickles and notebooks written against them keep working.

Imports no module of the package (it maps names; the modules are imported on demand)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: old module (under ``pyterrier_mice.``) → its module now
MOVED = {
    "attention": "models.attention",
    "backbone": "models.backbone",
    "segments": "models.segments",
    "policies": "models.policies",
    "registry": "models.registry",
    "modeling_base": "models.base",
    "loading": "models.checkpoints",
    "modeling_masked": "models.masked",
    "modeling_mice": "models.mice",
    "modeling_colbert": "models.colbert",
    "modeling_prettr": "models.prettr",
    "xpm_layout": "loaders.xpm_layout",
    "authors_weights": "loaders.authors_weights",
    "authors_checkpoint": "loaders.authors",
    "authors_newer": "loaders.authors_newer",
    "reranker_base": "rerankers.base",
    "split_reranker": "rerankers.split",
    "text": "rerankers.text",
    "profiling": "rerankers.profiling",
    "cross_encoder": "rerankers.cross_encoder",
    "mice_reranker": "rerankers.mice",
    "colbert_reranker": "rerankers.colbert",
    "prettr_reranker": "rerankers.prettr",
    "datasets": "evaluation.datasets",
    "retrieval": "evaluation.retrieval",
    "experiment": "evaluation.experiment",
}


#: public names of a module before the move that live in another module now: old module (an old
#: path above, or a module that still exists) → {name: "module:name"} (under ``pyterrier_mice.``)
MOVED_NAMES = {
    "modeling_base": {
        name: f"models.checkpoints:{name}"
        for name in ("encoder_num_layers", "has_classification_head", "load_encoder", "load_tokenizer")
    },
    "registry": {
        **{
            name: f"models:{name}"
            for name in (
                "ColBERTConfig",
                "ColBERTModel",
                "MaskedCrossEncoderConfig",
                "MaskedCrossEncoderModel",
                "MiceConfig",
                "MiceModel",
                "PreTTRConfig",
                "PreTTRModel",
            )
        },
        "MODELS": "_legacy:MODELS",
        "register": "_legacy:register",
    },
    "index.storage": {"STORAGE_KINDS": "index.kinds:STORAGE_KINDS", "get_storage": "index.kinds:get_storage"},
    "training.derive": {"LENGTH_COVERAGE": "training.sizing:COVERAGE", "LENGTH_SAMPLE": "training.sizing:SAMPLE"},
    "training.models": {"MODEL_CLASSES": "models.registry:MODEL_CLASSES"},
}


def registry_models() -> list:
    """The old ``registry.MODELS``: (config class, model class) of every model of the package."""
    from .models import MODEL_CLASSES

    return [(cls.config_class, cls) for cls in MODEL_CLASSES.values()]


def register() -> None:
    """The old ``registry.register()``: the models register with the Auto classes as they are imported."""
    import pyterrier_mice.models  # noqa: F401


_COMPUTED = {"MODELS": registry_models}  # old names whose value is computed when asked for
_INSTEAD = {
    "MODELS": "use pyterrier_mice.models.MODEL_CLASSES (model_type → model class)",
    "register": "the models register with the Auto classes as they are imported",
}


def _moved_name(package: str, old: str, name: str):
    """The object an old module's public name refers to now (with a DeprecationWarning)."""
    target = MOVED_NAMES.get(old, {}).get(name)
    if target is None:
        raise AttributeError(f"module '{package}.{old}' has no attribute {name!r}")
    module, attr = target.split(":")
    where = f"{package}.{module}"
    instead = _INSTEAD.get(name, f"import it from {where} ({attr})")
    warnings.warn(f"{package}.{old}.{name} is deprecated: {instead}", DeprecationWarning, stacklevel=3)
    if module == "_legacy" and attr in _COMPUTED:
        return _COMPUTED[attr]()
    return getattr(importlib.import_module(where), attr)


class _OldModule(types.ModuleType):
    """An old module path: the module now in its place, plus the names that moved elsewhere."""

    def __init__(self, name: str, current: types.ModuleType, package: str, old: str):
        super().__init__(name, current.__doc__)
        self.__dict__["_current"], self.__dict__["_package"], self.__dict__["_old"] = current, package, old

    def __getattr__(self, name):
        try:
            return getattr(self.__dict__["_current"], name)
        except AttributeError:
            return _moved_name(self.__dict__["_package"], self.__dict__["_old"], name)

    def __dir__(self):
        return sorted(set(dir(self.__dict__["_current"])) | set(MOVED_NAMES.get(self.__dict__["_old"], {})))


class _WithMovedNames(importlib.abc.Loader):
    """The loader of a module that still exists, giving it a ``__getattr__`` for its moved names."""

    def __init__(self, loader, package: str, old: str):
        self.loader, self.package, self.old = loader, package, old

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if "__getattr__" not in vars(module):
            module.__getattr__ = lambda name: _moved_name(self.package, self.old, name)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import pyterrier_mice.<old>`` gives the module now at its new path (the same module object,
    or, where names moved out of it, a module that adds them); a module that still exists but lost
    names gets them back."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        old = fullname[len(self.package) + 1 :] if fullname.startswith(self.package + ".") else None
        if old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        if old in MOVED_NAMES:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    spec.loader = _WithMovedNames(spec.loader, self.package, old)
                    return spec
        return None

    def create_module(self, spec):
        old = spec.name[len(self.package) + 1 :]
        current = importlib.import_module(f"{self.package}.{MOVED[old]}")
        return _OldModule(spec.name, current, self.package, old) if old in MOVED_NAMES else current

    def exec_module(self, module):
        pass


def install(package: str) -> None:
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedModules(package))  # before any other finder: these names are ours
