"""How per-token vectors are stored: ``fp32``, ``fp16``, or ``int8`` (symmetric, one fp16 scale per
stored vector, i.e. per token and, for K/V, per layer and per K or V).

Every kind writes through :class:`~.checksums.ChecksumWriter` and reads back slices of one
document (optionally one interaction layer of stored K/V) from memory maps.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .checksums import ChecksumWriter


class StoredArray:
    """``[total_tokens, *shape]`` vectors of one storage kind, memory-mapped."""

    def __init__(self, folder, name, total, shape, dtype, scales=False):
        self.name, self.shape = name, tuple(shape)
        self.data = _memmap(os.path.join(folder, name), dtype, (total, *shape))
        self.scales = _memmap(os.path.join(folder, name + ".scales"), np.float16, (total, *shape[:-1])) \
            if scales else None

    def byte_ranges(self, start: int, end: int) -> list[tuple[str, int, int]]:
        """The byte ranges of tokens ``start..end`` in each file (for checksum verification)."""
        out = [(self.name, start * self._row_bytes(self.data), end * self._row_bytes(self.data))]
        if self.scales is not None:
            out.append((self.name + ".scales", start * self._row_bytes(self.scales), end * self._row_bytes(self.scales)))
        return out

    @staticmethod
    def _row_bytes(arr) -> int:
        return int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.itemsize

    def read_into(self, start: int, end: int, layer: int | None, out: np.ndarray) -> None:
        """Tokens ``start..end`` (of stored K/V: only ``layer``) written into ``out`` (a float32
        array of their shape), converted from the stored kind in the same pass."""
        sel = (slice(start, end),) if layer is None else (slice(start, end), layer)
        target = torch.from_numpy(out)  # torch converts fp16/int8 vectorised (numpy's fp16 is slow)
        target.copy_(torch.from_numpy(self.data[sel]))
        if self.scales is not None:
            target.mul_(torch.from_numpy(self.scales[sel])[..., None])

    def read(self, start: int, end: int, layer: int | None = None) -> torch.Tensor:
        """Tokens ``start..end`` (of stored K/V: only ``layer``), fp32/fp16 as stored, int8 dequantised to fp32."""
        sel = (slice(start, end),) if layer is None else (slice(start, end), layer)
        values = torch.from_numpy(np.ascontiguousarray(self.data[sel]))
        if self.scales is None:
            return values
        return values.float() * torch.from_numpy(np.ascontiguousarray(self.scales[sel])).float()[..., None]


def _memmap(path, dtype, shape):
    from .layout import MiceIndexError
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    size = os.path.getsize(path) if os.path.exists(path) else -1
    if size != expected:
        raise MiceIndexError(f"{path}: {size} bytes, expected {expected} (truncated or corrupt index)")
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    # copy-on-write: views are writable for torch.from_numpy, and nothing is ever written back to disk
    return np.memmap(path, dtype=dtype, mode="c", shape=shape)


class Storage:
    """One storage kind: how to write vectors and how to open them again."""

    name = ""
    dtype = np.float32
    quantised = False

    def writer(self, folder: str, name: str) -> "VectorWriter":
        return VectorWriter(self, folder, name)

    def encode(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        return x.detach().float().cpu().numpy().astype(self.dtype), None

    def open(self, folder, name, total, shape) -> StoredArray:
        return StoredArray(folder, name, total, shape, self.dtype, scales=self.quantised)

    def files(self, folder, name) -> list[str]:
        return [os.path.join(folder, name)] + ([os.path.join(folder, name + ".scales")] if self.quantised else [])


class Float32(Storage):
    name, dtype = "fp32", np.float32


class Float16(Storage):
    name, dtype = "fp16", np.float16


class Int8(Storage):
    """Symmetric int8 with an fp16 scale per vector (max |x| / 127): 1 byte per value + 2 bytes per vector."""

    name, dtype, quantised = "int8", np.int8, True

    def encode(self, x):
        x = x.detach().float().cpu()
        scale = x.abs().amax(dim=-1).clamp(min=1e-8) / 127.0
        scale = scale.to(torch.float16).float()  # the scale as stored
        q = torch.round(x / scale[..., None]).clamp(-127, 127).to(torch.int8)
        return q.numpy(), scale.to(torch.float16).numpy()


class VectorWriter:
    """Appends encoded vectors to ``name`` (and its ``.scales``), recording chunk checksums."""

    def __init__(self, storage: Storage, folder: str, name: str):
        self.storage, self.name = storage, name
        self.files = {name: ChecksumWriter(os.path.join(folder, name))}
        if storage.quantised:
            self.files[name + ".scales"] = ChecksumWriter(os.path.join(folder, name + ".scales"))

    def write(self, x: torch.Tensor) -> None:
        values, scales = self.storage.encode(x)
        self.files[self.name].write(np.ascontiguousarray(values).tobytes())
        if scales is not None:
            self.files[self.name + ".scales"].write(np.ascontiguousarray(scales).tobytes())

    def close(self) -> dict[str, list[int]]:
        return {name: w.close() for name, w in self.files.items()}


STORAGE_KINDS = {cls.name: cls for cls in (Float32, Float16, Int8)}


def get_storage(name: str) -> Storage:
    if name not in STORAGE_KINDS:
        raise ValueError(f"storage dtype={name!r}; expected one of {list(STORAGE_KINDS)}")
    return STORAGE_KINDS[name]()
