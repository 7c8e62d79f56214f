"""Every storage kind of an index, by the name a build is given (``storage=``) and its manifest records."""

from __future__ import annotations

from .codecs import ProductQuantised, ProductQuantised1
from .storage import Float16, Float32, Int4, Int8, Storage

STORAGE_KINDS = {cls.name: cls for cls in (Float32, Float16, Int8, Int4, ProductQuantised, ProductQuantised1)}


def get_storage(name: str) -> Storage:
    if name not in STORAGE_KINDS:
        raise ValueError(f"storage={name!r}; expected one of {list(STORAGE_KINDS)}")
    return STORAGE_KINDS[name]()
