"""How per-token vectors are stored: ``fp32``, ``fp16``, ``int8`` (one fp16 scale per vector) or
``int4`` (one fp16 scale per 32 values), written with checksums and read back from memory maps
(the learned kinds are in :mod:`.codecs`, every kind by name in :mod:`.storage_kinds`)."""

from __future__ import annotations

import os

import numpy as np
import torch

from .checksums import ChecksumWriter


class StoredArray:
    """``[total_tokens, *shape]`` vectors of one storage kind, memory-mapped."""

    def __init__(self, folder, name, total, shape, storage: "Storage"):
        self.name, self.shape, self.storage = name, tuple(shape), storage
        data_shape, scale_shape = storage.stored_shapes(self.shape)
        self.data = _memmap(os.path.join(folder, name), storage.dtype, (total, *data_shape))
        self.scales = (
            _memmap(os.path.join(folder, name + ".scales"), np.float16, (total, *scale_shape))
            if scale_shape is not None
            else None
        )

    def byte_ranges(self, start: int, end: int) -> list[tuple[str, int, int]]:
        """The byte ranges of tokens ``start..end`` in each file (for checksum verification)."""
        out = [(self.name, start * self._row_bytes(self.data), end * self._row_bytes(self.data))]
        if self.scales is not None:
            out.append(
                (self.name + ".scales", start * self._row_bytes(self.scales), end * self._row_bytes(self.scales))
            )
        return out

    @staticmethod
    def _row_bytes(arr) -> int:
        return int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.itemsize

    def read_into(self, start: int, end: int, layer: int | None, out: np.ndarray) -> None:
        """Tokens ``start..end`` (of stored K/V: only ``layer``) written into ``out`` (a float32
        array of their shape), converted from the stored kind in the same pass."""
        sel = (slice(start, end),) if layer is None else (slice(start, end), layer)
        scales = None if self.scales is None else torch.from_numpy(self.scales[sel])
        # torch converts fp16/int8 vectorised (numpy's fp16 is slow)
        self.storage.decode_into(torch.from_numpy(self.data[sel]), scales, torch.from_numpy(out))

    def read(self, start: int, end: int, layer: int | None = None) -> torch.Tensor:
        """Tokens ``start..end`` (of stored K/V: only ``layer``), fp32/fp16 as stored, quantised kinds
        dequantised to fp32."""
        sel = (slice(start, end),) if layer is None else (slice(start, end), layer)
        values = torch.from_numpy(np.ascontiguousarray(self.data[sel]))
        if self.scales is None:
            return values
        return self.storage.decode(values, torch.from_numpy(np.ascontiguousarray(self.scales[sel])))


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

    def stored_shapes(self, shape: tuple) -> tuple[tuple, tuple | None]:
        """The per-token shapes of the stored values and of their scales (None: no scales)."""
        return tuple(shape), (tuple(shape[:-1]) if self.quantised else None)

    def decode(self, values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """Stored values and their scales as fp32 vectors."""
        return values.float() * scales.float()[..., None]

    def decode_into(self, values: torch.Tensor, scales: torch.Tensor | None, target: torch.Tensor) -> None:
        """Stored values (and scales) decoded into the fp32 ``target``, in place where the kind allows."""
        target.copy_(values)
        if scales is not None:
            target.mul_(scales[..., None])

    def open(self, folder, name, total, shape) -> StoredArray:
        return StoredArray(folder, name, total, shape, self)

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


class Int4(Storage):
    """Symmetric 4-bit values in [-7, 7], two per byte, with an fp16 scale (max |x| / 7) per group of
    32 consecutive values of a vector (per vector when its size is not a multiple of 32): 0.5625
    bytes per value, 28% of fp16. Groups keep one large channel from flattening a whole vector."""

    name, dtype, quantised = "int4", np.uint8, True
    GROUP = 32

    def _group(self, dim: int) -> int:
        if dim % 2:
            raise ValueError(f"int4 storage packs two values per byte: the vector size {dim} must be even")
        return self.GROUP if dim % self.GROUP == 0 else dim

    def stored_shapes(self, shape):
        *lead, dim = shape
        return (*lead, dim // 2), (*lead, dim // self._group(dim))

    def encode(self, x):
        x = x.detach().float().cpu()
        dim = x.shape[-1]
        groups = x.reshape(*x.shape[:-1], -1, self._group(dim))
        scale = (groups.abs().amax(dim=-1).clamp(min=1e-8) / 7.0).to(torch.float16)
        q = torch.round(groups / scale.float()[..., None]).clamp(-7, 7).to(torch.int16) + 8
        q = q.reshape(*x.shape[:-1], dim).to(torch.uint8)
        return (q[..., 0::2] | (q[..., 1::2] << 4)).numpy(), scale.numpy()

    def decode_into(self, values, scales, target):
        target.copy_(self.decode(values, scales))

    def decode(self, values, scales):
        q = torch.stack([values & 15, values >> 4], dim=-1).reshape(*values.shape[:-1], -1).float() - 8
        groups = q.reshape(*scales.shape, -1) * scales.float()[..., None]
        return groups.reshape(q.shape)


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
