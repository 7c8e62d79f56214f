"""The real constructor signature of a re-ranker class: its ``**kwargs`` passed up to its base classes
replaced by their keyword arguments (what ``help()``, notebooks, ``pt.inspect`` and the API reference read)."""

from __future__ import annotations

import inspect


def constructor_signature(cls) -> inspect.Signature:
    """``cls(...)``'s parameters with every ``**kwargs`` passed up to a base class replaced by that
    class's keyword arguments: the real signature, for ``help()``, notebooks and the API reference."""
    params, seen = [], set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        own = list(inspect.signature(init).parameters.values())[1:]
        positional = [p for p in own if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not params:
            params += positional
            seen |= {p.name for p in positional}
        params += [p for p in own if p.kind == p.KEYWORD_ONLY and p.name not in seen]
        seen |= {p.name for p in own}
        if not any(p.kind == p.VAR_KEYWORD for p in own):
            break
    return inspect.Signature(params)


def keywords_of(function, keywords: inspect.Signature) -> inspect.Signature:
    """``function``'s signature with its ``**kwargs`` replaced by ``keywords``' keyword arguments."""
    own = [p for p in inspect.signature(function).parameters.values() if p.kind != p.VAR_KEYWORD]
    names = {p.name for p in own}
    extra = [
        p.replace(kind=p.KEYWORD_ONLY)
        for p in keywords.parameters.values()
        if p.kind == p.KEYWORD_ONLY and p.name not in names | {"model_name"}
    ]  # model_name: the path
    return inspect.Signature(own + extra)
