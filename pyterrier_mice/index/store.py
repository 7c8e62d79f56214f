"""Reading a document-state index (see :mod:`.layout`): the PyTerrier artifact, lookups by docno
and raw text, and reads whose bytes are checked against the stored checksums."""
from __future__ import annotations

import os

import numpy as np
import pyterrier as pt
import torch

from .checksums import ChunkVerifier
from .fingerprint import compare_precision, model_fingerprint, model_precision, tokenizer_fingerprint
from .layout import (ARTIFACT_FORMAT, ARTIFACT_TYPE, DOCNOS, EXTRAS, OFFSETS, STATES, TEXTS, MiceIndexError,
                     read_manifest, text_hash)
from .storage import get_storage

VERIFY_MODES = ("lazy", "full", "none")


class DocStateIndex(pt.Artifact, pt.Indexer):
    """Precomputed document states of a split re-ranker (MICE, ColBERT, PreTTR).

    Build: ``DocStateIndex(path).indexer(reranker).index(corpus_iter)``.
    Use:   ``MiceReranker.from_pretrained(name, index=DocStateIndex(path))`` (or ``index=path``).

    ``verify`` chooses how stored bytes are checked against their checksums: ``"lazy"``
    (default) checks each 1 MiB chunk the first time a read touches it, ``"full"`` checks every
    file when the index is opened, ``"none"`` trusts the disk. :meth:`verify` checks everything now.
    """

    ARTIFACT_TYPE = ARTIFACT_TYPE
    ARTIFACT_FORMAT = ARTIFACT_FORMAT

    def __init__(self, path, verify: str = "lazy"):
        super().__init__(os.fspath(path))
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify={verify!r}; expected one of {VERIFY_MODES}")
        self.path = os.fspath(path)
        self.verify_mode = verify
        self._loaded = False

    def __repr__(self):
        return f"{type(self).__name__}({self.path!r})"

    # ------------------------------------------------------------------ opening
    def built(self) -> bool:
        return os.path.exists(os.path.join(self.path, "manifest.json"))

    def _load(self) -> None:
        if self._loaded:
            return
        self.manifest = m = read_manifest(self.path)
        try:
            n, total = m["num_docs"], m["num_tokens"]
            self._verifiers = {name: ChunkVerifier(os.path.join(self.path, name), crcs, m["checksums"]["chunk_bytes"])
                               for name, crcs in m["checksums"]["files"].items()}
            for small in (DOCNOS, OFFSETS, TEXTS):  # small files: always checked in full
                self._check_file(small)
            with open(os.path.join(self.path, DOCNOS), encoding="utf8") as f:
                self.docnos = f.read().split("\n")[:n]
            if len(self.docnos) != n:
                raise MiceIndexError(f"{self.path}/{DOCNOS} holds {len(self.docnos)} docnos, manifest says {n}")
            self.offsets = np.load(os.path.join(self.path, OFFSETS), mmap_mode="r")
            self.text_hashes = np.load(os.path.join(self.path, TEXTS), mmap_mode="r")
            if self.offsets.shape != (n + 1,) or int(self.offsets[-1]) != total or self.text_hashes.shape != (n,):
                raise MiceIndexError(f"{self.path}: {OFFSETS}/{TEXTS} do not match the manifest")
            self.storage = get_storage(m["storage"])
            self.states = self.storage.open(self.path, STATES, total, m["state_shape"])
            self.extras = self.storage.open(self.path, EXTRAS, total, m["extras_shape"]) if m["extras_shape"] else None
        except (OSError, ValueError, KeyError) as e:
            if isinstance(e, MiceIndexError):
                raise
            raise MiceIndexError(f"{self.path}: corrupt document-state index ({type(e).__name__}: {e})") from e
        self.lookup = {d: i for i, d in enumerate(self.docnos)}
        self._loaded = True
        if self.verify_mode == "full":
            self.verify()

    def _check_file(self, name: str, start: int = 0, end: int | None = None) -> None:
        """Raise when bytes ``start..end`` of ``name`` (default all) differ from their checksums."""
        v = self._verifiers.get(name)
        if v is None:
            raise MiceIndexError(f"{self.path}: no checksums recorded for {name}")
        size = os.path.getsize(v.path)
        expected = len(v.crcs)
        if -(-size // v.chunk_bytes) != expected:
            raise MiceIndexError(f"{v.path}: {size} bytes, but checksums for {expected} chunk(s) of "
                                 f"{v.chunk_bytes} bytes (truncated or corrupt index)")
        bad = v.check_range(start, size if end is None else end)
        if bad:
            lo, hi = bad[0] * v.chunk_bytes, min(size, (bad[-1] + 1) * v.chunk_bytes)
            raise MiceIndexError(f"{v.path}: bytes {lo}..{hi} do not match their checksums ({len(bad)} chunk(s) "
                                 "corrupt on disk); rebuild the index (indexer(..., overwrite=True))")

    def verify(self) -> "DocStateIndex":
        """Check every file of the index against its checksums (raises :class:`MiceIndexError`)."""
        self._load()
        for name in self._verifiers:
            self._check_file(name)
        return self

    def __len__(self) -> int:
        self._load()
        return len(self.docnos)

    @property
    def has_extras(self) -> bool:
        self._load()
        return self.extras is not None

    def bytes_per_token(self) -> float:
        """Disk bytes per document token (states, plus extras when stored)."""
        self._load()
        names = [STATES] + ([EXTRAS] if self.extras is not None else [])
        total = sum(os.path.getsize(p) for n in names for p in self.storage.files(self.path, n))
        return total / max(1, self.manifest["num_tokens"])

    # ------------------------------------------------------------------ matching a re-ranker
    def check_reranker(self, reranker) -> None:
        """Refuse a re-ranker whose model, tokenizer, kind or document length differs from the build's."""
        self._load()
        m = self.manifest
        if m["reranker"] != type(reranker).__name__:
            raise MiceIndexError(f"{self.path} holds {m['reranker']} states, not {type(reranker).__name__} states")
        if m["doc_max_length"] != reranker.doc_max_length:
            raise MiceIndexError(f"{self.path} was built with doc_max_length={m['doc_max_length']}, "
                                 f"the re-ranker uses {reranker.doc_max_length}")
        if m["tokenizer_fingerprint"] != tokenizer_fingerprint(reranker.tokenizer):
            raise MiceIndexError(f"{self.path} was built with a different tokenizer; rebuild the index for this one")
        built, running = m["model_precision"], model_precision(reranker)
        precision = compare_precision(built, running)
        stored = m["model_fingerprints"].get(precision)
        if stored is None or stored != model_fingerprint(reranker, self.has_extras, precision):
            dtypes = "" if built == running else (f" (the index was built by a {built} model, this re-ranker runs in "
                                                  f"{running}; compared at {precision})")
            raise MiceIndexError(f"{self.path} was built with a different model (fingerprint mismatch: config or "
                                 f"weights differ){dtypes}; rebuild the index for this model")

    # ------------------------------------------------------------------ lookups and reads
    def lookup_texts(self, docnos, texts) -> list[int | None]:
        """Index row of each docno whose stored raw text equals ``texts``, else None (no tokenisation)."""
        self._load()
        rows = []
        for d, t in zip(docnos, texts):
            i = self.lookup.get(d)
            rows.append(i if i is not None and int(self.text_hashes[i]) == text_hash(t) else None)
        return rows

    def doc_length(self, row: int) -> int:
        self._load()
        return int(self.offsets[row + 1] - self.offsets[row])

    def read(self, row: int, layer: int | None = None) -> torch.Tensor:
        """A document's stored memory (its extras if the index has them, else its states) in the
        stored dtype; ``layer`` selects one interaction layer of stored K/V."""
        self._load()
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        arr, name = (self.extras, EXTRAS) if self.extras is not None else (self.states, STATES)
        if self.verify_mode == "lazy":
            for file, lo, hi in arr.byte_ranges(start, end):
                self._check_file(file, lo, hi)
        return arr.read(start, end, layer)


    # ------------------------------------------------------------------ building
    def indexer(self, reranker, *, kv: bool = False, dtype: str = "fp16", batch_size: int | None = None,
                overwrite: bool = False, verbose: bool = False, text_field: str | None = None,
                wait: bool | float = False):
        """An indexer encoding documents with ``reranker`` (MICE, ColBERT or PreTTR re-ranker).

        ``kv=True`` (MICE only) also stores each interaction layer's keys and values; ``dtype``
        is the storage kind (``fp32``, ``fp16``, ``int8``); ``text_field`` defaults to the
        re-ranker's; ``wait`` queues behind a build already running into the same path (True, or
        seconds) instead of failing.
        """
        from .build import DocStateIndexer
        return DocStateIndexer(self, reranker, kv=kv, dtype=dtype, batch_size=batch_size, overwrite=overwrite,
                               verbose=verbose, text_field=text_field, wait=wait)

    def index(self, it, reranker=None, **kwargs) -> "DocStateIndex":
        if reranker is None:
            raise TypeError("DocStateIndex.index needs reranker=... (or use .indexer(reranker))")
        return self.indexer(reranker, **kwargs).index(it)


MiceIndex = DocStateIndex
