"""Package ``__init__`` s that import their names when first used (PEP 562), so that ``import
pyterrier_mice`` and ``pyterrier-mice --help`` load no torch or transformers."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, where: dict[str, str], before=None):
    """``__getattr__`` and ``__dir__`` for ``package``: ``where`` maps each exported name to its
    module (relative to ``package``); ``before()`` runs once, at the first name looked up."""
    state = {"ready": before is None}

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if not state["ready"]:
            state["ready"] = True
            before()
        value = getattr(importlib.import_module(module, package), name)
        setattr(importlib.import_module(package), name, value)  # looked up once
        return value

    def __dir__():
        return sorted(set(where) | set(vars(importlib.import_module(package))))

    return __getattr__, __dir__
