"""The module paths of the package before it was split into layers, resolved to where their code
lives now, so that imports, pickles and notebooks written against them keep working.

Imports no module of the package (it maps names; the modules are imported on demand)."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module (under ``pyterrier_mice.``) → its module now
MOVED = {
    "attention": "models.attention", "backbone": "models.backbone", "segments": "models.segments",
    "policies": "models.policies", "registry": "models.registry", "modeling_base": "models.base",
    "loading": "models.checkpoints", "modeling_masked": "models.masked", "modeling_mice": "models.mice",
    "modeling_colbert": "models.colbert", "modeling_prettr": "models.prettr",
    "xpm_layout": "loaders.xpm_layout", "authors_weights": "loaders.authors_weights",
    "authors_checkpoint": "loaders.authors", "authors_newer": "loaders.authors_newer",
    "reranker_base": "rerankers.base", "split_reranker": "rerankers.split", "text": "rerankers.text",
    "profiling": "rerankers.profiling", "cross_encoder": "rerankers.cross_encoder", "mice_reranker": "rerankers.mice",
    "colbert_reranker": "rerankers.colbert", "prettr_reranker": "rerankers.prettr",
    "datasets": "evaluation.datasets", "retrieval": "evaluation.retrieval", "experiment": "evaluation.experiment",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import pyterrier_mice.<old>`` gives the module now at its new path (the same module object)."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        old = fullname[len(self.package) + 1:] if fullname.startswith(self.package + ".") else None
        if old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{self.package}.{MOVED[spec.name[len(self.package) + 1:]]}")

    def exec_module(self, module):
        pass


def install(package: str) -> None:
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedModules(package))  # before any other finder: these names are ours
