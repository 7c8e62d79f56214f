"""Learned storage kinds: product quantisation (``pq``: 2 bits per value, ``pq1``: 1 bit per value),
codebooks trained with faiss on the first tokens a build writes, stored beside the codes, and
decoded with a table lookup (faiss is needed to build such an index, not to read it).

Each stored vector of ``d`` values is cut into ``d / sub`` sub-vectors, each replaced by the byte
naming the nearest of 256 centroids (``sub`` = 4 for ``pq``, 8 for ``pq1``): at hidden size 384 a
state takes 96 bytes (``pq``), 8× fewer than fp16. Stored K/V get one codebook per layer, keys
and values. Files: ``<name>`` (uint8 codes, ``[tokens, *lead, d / sub]``) and ``<name>.codebook``
(float32 ``[slices, d / sub, 256, sub]``), both checksummed."""

from __future__ import annotations

import os

import numpy as np
import torch

from .checksums import ChecksumWriter
from .storage import Storage, StoredArray, _memmap

CODES = 256  # centroids per sub-vector: one byte per code


class ProductQuantised(Storage):
    """Product quantisation with ``sub`` values per one-byte code, trained on ``sample_tokens``
    tokens (the first ones a build writes; fewer when the corpus has fewer: below about 10,000
    tokens the codebooks are coarser than faiss advises, and at 256 tokens or fewer they hold the
    tokens themselves, stored exactly)."""

    name, dtype, quantised = "pq", np.uint8, True
    sub = 4
    sample_tokens = 16384
    codebook_suffix = ".codebook"

    def _subvectors(self, dim: int) -> int:
        if dim % self.sub:
            raise ValueError(
                f"{self.name} storage cuts vectors into groups of {self.sub} values: the vector "
                f"size {dim} is not a multiple of {self.sub}; use int8 or int4"
            )
        return dim // self.sub

    def stored_shapes(self, shape):
        *lead, dim = shape
        return (*lead, self._subvectors(dim)), None

    def writer(self, folder, name):
        return CodebookWriter(self, folder, name)

    def open(self, folder, name, total, shape):
        return CodedArray(folder, name, total, shape, self)

    def files(self, folder, name):
        return [os.path.join(folder, name), os.path.join(folder, name + self.codebook_suffix)]

    # -------------------------------------------------------------- training and encoding (faiss)
    def train(self, sample: np.ndarray) -> np.ndarray:
        """Codebooks ``[slices, M, 256, sub]`` from ``sample`` ``[n, *lead, dim]`` (float32), one per
        leading index (a K/V layer's keys, its values, ...)."""
        faiss = _faiss()
        n, *lead, dim = sample.shape
        m = self._subvectors(dim)
        flat = sample.reshape(n, -1, dim).astype(np.float32)
        books = np.empty((flat.shape[1], m, CODES, self.sub), dtype=np.float32)
        if n <= CODES:  # no more tokens than centroids: each sub-vector is its own centroid (stored exactly)
            points = flat.reshape(n, flat.shape[1], m, self.sub).transpose(1, 2, 0, 3)
            books[:] = points[:, :, np.minimum(np.arange(CODES), n - 1)]
            return books
        for s in range(flat.shape[1]):
            pq = faiss.ProductQuantizer(dim, m, 8)
            pq.verbose = False
            pq.cp.min_points_per_centroid = 1  # a small corpus: fewer points than faiss advises, said in the docs
            pq.train(np.ascontiguousarray(flat[:, s], dtype=np.float32))
            books[s] = faiss.vector_to_array(pq.centroids).reshape(m, CODES, self.sub)
        return books

    def quantizers(self, books: np.ndarray) -> list:
        """One faiss quantizer per slice of ``books`` ``[slices, M, 256, sub]``, to encode with."""
        faiss = _faiss()
        slices, m, _, sub = books.shape
        out = []
        for s in range(slices):
            pq = faiss.ProductQuantizer(m * sub, m, 8)
            faiss.copy_array_to_vector(np.ascontiguousarray(books[s], dtype=np.float32).ravel(), pq.centroids)
            out.append(pq)
        return out

    def encode_with(self, quantizers: list, x: np.ndarray) -> np.ndarray:
        """Codes (uint8 ``[n, *lead, M]``) of ``x`` ``[n, *lead, dim]``, one quantizer per slice."""
        n, *lead, dim = x.shape
        flat = x.reshape(n, -1, dim)
        m = self._subvectors(dim)
        codes = np.empty((n, flat.shape[1], m), dtype=np.uint8)
        for s, pq in enumerate(quantizers):
            codes[:, s] = pq.compute_codes(np.ascontiguousarray(flat[:, s], dtype=np.float32))
        return codes.reshape(n, *lead, m)


class ProductQuantised1(ProductQuantised):
    """Product quantisation at 1 bit per value (8 values per code): 16× fewer bytes than fp16."""

    name, sub = "pq1", 8


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "building a pq/pq1 index trains its codebooks with faiss: pip install faiss-cpu "
            "(or pyterrier-mice[pq]); reading one does not need it"
        ) from None
    return faiss


class CodebookWriter:
    """Appends vectors as codes: the first ``sample_tokens`` tokens are held until the codebooks are
    trained on them (or until :meth:`close`, for a smaller corpus), then every token is encoded."""

    def __init__(self, storage: ProductQuantised, folder: str, name: str):
        self.storage, self.name = storage, name
        self.codes = ChecksumWriter(os.path.join(folder, name))
        self.book_path = os.path.join(folder, name + storage.codebook_suffix)
        self.books = None
        self.quantizers: list = []  # made once from the books, used for every write
        self.held: list[np.ndarray] = []
        self.held_tokens = 0

    def write(self, x: torch.Tensor) -> None:
        x = x.detach().float().cpu().numpy()
        if self.books is not None:
            self.codes.write(self.storage.encode_with(self.quantizers, x).tobytes())
            return
        self.held.append(x)
        self.held_tokens += x.shape[0]
        if self.held_tokens >= self.storage.sample_tokens:
            self._train()

    def _train(self) -> None:
        sample = np.concatenate(self.held)
        self.books = self.storage.train(sample[: self.storage.sample_tokens])
        self.quantizers = self.storage.quantizers(self.books)
        self.held, self.held_tokens = [], 0
        self.codes.write(self.storage.encode_with(self.quantizers, sample).tobytes())

    def close(self) -> dict[str, list[int]]:
        if self.books is None and self.held:
            self._train()
        out = {self.name: self.codes.close()}
        if self.books is not None:
            book = ChecksumWriter(self.book_path)
            book.write(np.ascontiguousarray(self.books, dtype="<f4").tobytes())
            out[self.name + self.storage.codebook_suffix] = book.close()
        return out


class CodedArray(StoredArray):
    """Codes memory-mapped, their codebooks in memory; reads decode by table lookup."""

    def __init__(self, folder, name, total, shape, storage: ProductQuantised):
        self.name, self.shape, self.storage = name, tuple(shape), storage
        data_shape, _ = storage.stored_shapes(self.shape)
        self.data = _memmap(os.path.join(folder, name), np.uint8, (total, *data_shape))
        self.scales = None
        *lead, dim = self.shape
        m = data_shape[-1]
        slices = int(np.prod(lead, dtype=np.int64)) if lead else 1
        self.book_file = name + storage.codebook_suffix
        books = (
            _memmap(os.path.join(folder, self.book_file), "<f4", (slices, m, CODES, storage.sub))
            if total
            else np.zeros((slices, m, CODES, storage.sub), dtype=np.float32)
        )
        # one lookup table: row (slice, sub-vector, code) holds that code's ``sub`` values
        self.table = torch.from_numpy(np.array(books, dtype=np.float32)).reshape(-1, storage.sub)
        self.lead, self.m = tuple(lead), m

    def byte_ranges(self, start, end):
        row = int(np.prod(self.data.shape[1:], dtype=np.int64))
        return [(self.name, start * row, end * row)]

    def _rows(self, codes: torch.Tensor, layer: int | None) -> torch.Tensor:
        """Table rows of ``codes`` ``[n, *lead', M]`` (``lead'`` = lead without its first axis under ``layer``)."""
        per_slice = self.m * CODES
        lead = self.lead if layer is None else self.lead[1:]
        slices = int(np.prod(lead, dtype=np.int64)) if lead else 1
        first = 0 if layer is None else layer * slices
        base = (first + torch.arange(slices).reshape(*lead, 1)) * per_slice + torch.arange(self.m) * CODES
        return codes.long() + base

    def decode_codes(self, codes: torch.Tensor, layer: int | None) -> torch.Tensor:
        values = torch.nn.functional.embedding(self._rows(codes, layer), self.table)
        return values.reshape(*codes.shape[:-1], self.m * self.storage.sub)

    def read_into(self, start, end, layer, out):
        torch.from_numpy(out).copy_(self.read(start, end, layer))

    def read(self, start, end, layer=None):
        sel = (slice(start, end),) if layer is None else (slice(start, end), layer)
        return self.decode_codes(torch.from_numpy(np.ascontiguousarray(self.data[sel])), layer)
