"""Reading a document-state index: the PyTerrier artifact, lookups by docno and raw text, and
reads checked against the stored checksums."""

from __future__ import annotations

import os

import numpy as np
import pyterrier as pt
import torch

from .checksums import ChunkVerifier
from .fingerprint import compare_precision, model_fingerprint, model_precision, tokenizer_fingerprint
from .layout import (
    ARTIFACT_FORMAT,
    ARTIFACT_TYPE,
    DOCNOS,
    EXTRAS,
    OFFSETS,
    PRIOR,
    STATES,
    TEXTS,
    TOKENS,
    MiceIndexError,
    decode_docnos,
    manifest_digest,
    permission_denied,
    read_manifest,
    text_hash,
)
from .storage_kinds import get_storage

VERIFY_MODES = ("lazy", "full", "none")


def inspect_parameters(cls) -> set[str]:
    """The names of ``cls(...)``'s parameters."""
    import inspect

    return set(inspect.signature(cls).parameters)


class _Part:
    """One index directory: its manifest, arrays and checksum verifiers."""

    def __init__(self, path: str, verify: str):
        self.path, self.verify_mode = path, verify
        self.manifest = m = read_manifest(path)
        if "shards" in m:
            raise MiceIndexError(f"{path}: a sharded index inside a shard")
        try:
            n, total = m["num_docs"], m["num_tokens"]
            self._verifiers = {
                name: ChunkVerifier(os.path.join(path, name), crcs, m["checksums"]["chunk_bytes"])
                for name, crcs in m["checksums"]["files"].items()
            }
            for small in (DOCNOS, OFFSETS, TEXTS):  # small files: always checked in full
                self.check_file(small)
            with open(os.path.join(path, DOCNOS), "rb") as f:
                self.docnos = decode_docnos(f.read(), n)
            if len(self.docnos) != n:
                raise MiceIndexError(f"{path}/{DOCNOS} holds {len(self.docnos)} docnos, manifest says {n}")
            self.offsets = np.load(os.path.join(path, OFFSETS), mmap_mode="r")
            self.text_hashes = np.load(os.path.join(path, TEXTS), mmap_mode="r")
            if self.offsets.shape != (n + 1,) or int(self.offsets[-1]) != total or self.text_hashes.shape != (n,):
                raise MiceIndexError(f"{path}: {OFFSETS}/{TEXTS} do not match the manifest")
            self.storage = get_storage(m["storage"])
            self.states = self.storage.open(path, STATES, total, m["state_shape"])
            self.extras = self.storage.open(path, EXTRAS, total, m["extras_shape"]) if m["extras_shape"] else None
            for arr in (self.states, self.extras):  # codebooks: small, checked in full
                if arr is not None and getattr(arr, "book_file", None):
                    self.check_file(arr.book_file)
            self.tokens = (
                np.memmap(os.path.join(path, TOKENS), dtype="<i4", mode="r", shape=(total,))
                if m.get("token_ids") and total
                else None
            )
            self.prior = (
                np.memmap(os.path.join(path, PRIOR), dtype="<f4", mode="r", shape=(n, m["prior"]["dim"]))
                if m.get("prior")
                else None
            )
        except (OSError, ValueError, KeyError) as e:
            if isinstance(e, MiceIndexError):
                raise
            if isinstance(e, PermissionError):
                raise permission_denied(path, os.path.basename(e.filename or "a file")) from None
            raise MiceIndexError(f"{path}: corrupt document-state index ({type(e).__name__}: {e})") from e

    def check_file(self, name: str, start: int = 0, end: int | None = None) -> None:
        """Raise when bytes ``start..end`` of ``name`` (default all) differ from their checksums."""
        v = self._verifiers.get(name)
        if v is None:
            raise MiceIndexError(f"{self.path}: no checksums recorded for {name}")
        size = v.size
        if -(-size // v.chunk_bytes) != len(v.crcs):
            raise MiceIndexError(
                f"{v.path}: {size} bytes, but checksums for {len(v.crcs)} chunk(s) of "
                f"{v.chunk_bytes} bytes (truncated or corrupt index)"
            )
        bad = v.check_range(start, size if end is None else end)
        if bad:
            lo, hi = bad[0] * v.chunk_bytes, min(size, (bad[-1] + 1) * v.chunk_bytes)
            raise MiceIndexError(
                f"{v.path}: bytes {lo}..{hi} do not match their checksums ({len(bad)} chunk(s) "
                "corrupt on disk); rebuild the index (indexer(..., overwrite=True))"
            )

    def verify(self) -> None:
        for name in self._verifiers:
            self.check_file(name)

    def _located(self, row: int):
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        arr = self.extras if self.extras is not None else self.states
        if self.verify_mode == "lazy":
            for file, lo, hi in arr.byte_ranges(start, end):
                self.check_file(file, lo, hi)
        return arr, start, end

    def read(self, row: int, layer: int | None = None) -> torch.Tensor:
        arr, start, end = self._located(row)
        return arr.read(start, end, layer)

    def read_into(self, row: int, layer: int | None, out: np.ndarray) -> None:
        arr, start, end = self._located(row)
        arr.read_into(start, end, layer, out)

    def token_ids(self, row: int) -> np.ndarray:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        if self.verify_mode == "lazy":
            self.check_file(TOKENS, 4 * start, 4 * end)
        return np.asarray(self.tokens[start:end], dtype=np.int64)

    def prior_embedding(self, row: int) -> np.ndarray:
        dim = self.prior.shape[1]
        if self.verify_mode == "lazy":
            self.check_file(PRIOR, 4 * dim * row, 4 * dim * (row + 1))
        return np.asarray(self.prior[row], dtype=np.float32)


# what every shard of a sharded index must agree on
_SHARED_KEYS = (
    "reranker",
    "state_shape",
    "extras_shape",
    "storage",
    "doc_max_length",
    "model_precision",
    "model_fingerprints",
    "tokenizer_fingerprint",
    "token_ids",
    "prior",
)


class MiceIndex(pt.Artifact, pt.Indexer):
    """Precomputed document states of a split re-ranker (MICE, ColBERT, PreTTR).

    Build: ``MiceIndex(path).indexer(reranker).index(corpus_iter)`` (sharded across
    processes: see :meth:`indexer`). Use: ``MiceReranker.from_pretrained(name, index=path)``.

    ``verify`` chooses how stored bytes are checked against their checksums: ``"lazy"``
    (default) checks each 1 MiB chunk the first time a read touches it, ``"full"`` checks every
    file when the index is opened, ``"none"`` trusts the disk. :meth:`verify` checks everything now.
    A sharded index (one directory per worker under ``shards/``) reads as one.
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

    # ------------------------------------------------------------------ pickling: by path
    def __getstate__(self) -> dict:
        """The path, how to verify, and (once opened) the manifest's digest: a pickle (to a worker
        process, into a saved pipeline) never carries the stored states."""
        return {
            "path": self.path,
            "verify_mode": self.verify_mode,
            "manifest_digest": manifest_digest(self.path) if self._loaded else None,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["verify_mode"])
        self._pickled_digest = state.get("manifest_digest")

    # ------------------------------------------------------------------ opening
    def built(self) -> bool:
        return os.path.exists(os.path.join(self.path, "manifest.json"))

    def _load(self) -> None:
        if self._loaded:
            return
        root = read_manifest(self.path)
        pickled = getattr(self, "_pickled_digest", None)
        if pickled is not None and pickled != manifest_digest(self.path):
            raise MiceIndexError(
                f"{self.path} changed since this index was pickled (rebuilt or replaced); "
                "open it again, and re-rank again with it"
            )
        if "shards" in root:
            self.parts = [_Part(os.path.join(self.path, s), self.verify_mode) for s in root["shards"]]
            first = self.parts[0].manifest
            for part in self.parts[1:]:
                bad = [k for k in _SHARED_KEYS if part.manifest.get(k) != first.get(k)]
                if bad:
                    raise MiceIndexError(
                        f"{part.path}: this shard differs from {self.parts[0].path} in {bad}; "
                        "rebuild the sharded index with one model and one setting"
                    )
            self._manifest = {
                **first,
                "num_docs": sum(p.manifest["num_docs"] for p in self.parts),
                "num_tokens": sum(p.manifest["num_tokens"] for p in self.parts),
                "shards": root["shards"],
            }
        else:
            self.parts = [_Part(self.path, self.verify_mode)]
            self._manifest = self.parts[0].manifest
        self._first_row = np.cumsum([0] + [len(p.docnos) for p in self.parts])
        self._docnos = [d for p in self.parts for d in p.docnos]
        self.lookup = {}
        for i, d in enumerate(self._docnos):
            if d in self.lookup:
                raise MiceIndexError(f"{self.path}: docno {d!r} is stored twice (in two shards)")
            self.lookup[d] = i
        self.text_hashes = np.concatenate([np.asarray(p.text_hashes) for p in self.parts])
        self.lengths = np.concatenate([np.diff(np.asarray(p.offsets)) for p in self.parts])
        self.storage = self.parts[0].storage
        self.extras = self.parts[0].extras
        self._loaded = True
        if self.verify_mode == "full":
            self.verify()

    @property
    def manifest(self) -> dict:
        self._load()
        return self._manifest

    @property
    def docnos(self) -> list[str]:
        self._load()
        return self._docnos

    def verify(self) -> "MiceIndex":
        """Check every file of the index against its checksums (raises :class:`MiceIndexError`)."""
        self._load()
        for part in self.parts:
            part.verify()
        return self

    def __len__(self) -> int:
        self._load()
        return len(self.docnos)

    @property
    def has_extras(self) -> bool:
        self._load()
        return self.extras is not None

    @property
    def has_token_ids(self) -> bool:
        """Whether the index stores each document's token ids (see :meth:`token_ids`)."""
        return bool(self.manifest.get("token_ids"))

    @property
    def prior_digest(self) -> str | None:
        """The digest of the prior whose document embeddings the index stores (see
        :meth:`prior_embeddings`), or None when it stores none."""
        return (self.manifest.get("prior") or {}).get("digest")

    def prior_embeddings(self, rows) -> torch.Tensor:
        """``[len(rows), dim]`` float32: the stored prior embeddings of the documents at ``rows``."""
        self._load()
        if self.prior_digest is None:
            raise MiceIndexError(f"{self.path} stores no prior embeddings (it was built by a model without a prior)")
        if not len(rows):
            return torch.zeros(0, self.manifest["prior"]["dim"])
        return torch.from_numpy(np.stack([p.prior_embedding(local) for p, local in map(self._part_of, rows)]))

    def bytes_per_token(self) -> float:
        """Disk bytes per document token (states, plus extras and token ids when stored)."""
        self._load()
        names = [STATES] + ([EXTRAS] if self.extras is not None else [])
        total = sum(os.path.getsize(f) for p in self.parts for n in names for f in self.storage.files(p.path, n))
        total += sum(os.path.getsize(os.path.join(p.path, TOKENS)) for p in self.parts if p.tokens is not None)
        return total / max(1, self.manifest["num_tokens"])

    # ------------------------------------------------------------------ matching a re-ranker
    def check_reranker(self, reranker) -> None:
        """Refuse a re-ranker whose model, tokenizer, kind or document length differs from the build's."""
        self._load()
        m = self.manifest
        if m["reranker"] != type(reranker).__name__:
            raise MiceIndexError(f"{self.path} holds {m['reranker']} states, not {type(reranker).__name__} states")
        if m["doc_max_length"] != reranker.doc_max_length:
            raise MiceIndexError(
                f"{self.path} was built with doc_max_length={m['doc_max_length']}, "
                f"the re-ranker uses {reranker.doc_max_length}"
            )
        if m["tokenizer_fingerprint"] != tokenizer_fingerprint(reranker.tokenizer):
            raise MiceIndexError(f"{self.path} was built with a different tokenizer; rebuild the index for this one")
        if getattr(reranker, "uses_token_ids", False) and not self.has_token_ids:
            raise MiceIndexError(
                f"{self.path} stores no document token ids, which this model's exact-match options "
                "read; rebuild the index (indexer(..., overwrite=True))"
            )
        built, running = m["model_precision"], model_precision(reranker)
        precision = compare_precision(built, running)
        stored = m["model_fingerprints"].get(precision)
        if stored is None or stored != model_fingerprint(reranker, self.has_extras, precision):
            dtypes = (
                ""
                if built == running
                else (
                    f" (the index was built by a {built} model, this re-ranker runs in "
                    f"{running}; compared at {precision})"
                )
            )
            raise MiceIndexError(
                f"{self.path} was built with a different model (fingerprint mismatch: config or "
                f"weights differ){dtypes}; rebuild the index for this model"
            )

    # ------------------------------------------------------------------ lookups and reads
    def lookup_texts(self, docnos, texts) -> list[int | None]:
        """Index row of each docno whose stored raw text equals ``texts``, else None (no tokenisation)."""
        self._load()
        rows = []
        for d, t in zip(docnos, texts):
            i = self.lookup.get(d)
            rows.append(i if i is not None and int(self.text_hashes[i]) == text_hash(t) else None)
        return rows

    def __contains__(self, docno) -> bool:
        """Whether the index holds a document under ``docno`` (whatever its text)."""
        self._load()
        return docno in self.lookup

    def memory_shape(self, layer: int | None = None) -> tuple[int, ...]:
        """The per-token shape of what :meth:`read` returns (of one K/V layer with ``layer``)."""
        m = self.manifest
        shape = tuple(m["extras_shape"] or m["state_shape"])
        return shape if layer is None else shape[1:]

    def doc_length(self, row: int) -> int:
        self._load()
        return int(self.lengths[row])

    def read(self, row: int, layer: int | None = None) -> torch.Tensor:
        """A document's stored memory (its extras if the index has them, else its states) in the
        stored dtype (quantised kinds decoded to fp32); ``layer`` selects one interaction layer of stored K/V."""
        part, local = self._part_of(row)
        return part.read(local, layer)

    def read_into(self, row: int, layer: int | None, out: np.ndarray) -> None:
        """Write a document's stored memory (or one layer of its K/V) into ``out``, a float32
        array of its shape, converting from the stored kind in that one copy."""
        part, local = self._part_of(row)
        part.read_into(local, layer, out)

    def token_ids(self, row: int) -> np.ndarray:
        """A document's token ids (int64), for an index built with them (:attr:`has_token_ids`)."""
        part, local = self._part_of(row)
        if part.tokens is None:
            raise MiceIndexError(f"{self.path} stores no document token ids; rebuild it with a model that reads them")
        return part.token_ids(local)

    def _part_of(self, row: int):
        self._load()
        i = int(np.searchsorted(self._first_row, row, side="right")) - 1
        return self.parts[i], row - int(self._first_row[i])

    # ------------------------------------------------------------------ a factory of its re-ranker
    def reranker(self, model: str | None = None, **kwargs):
        """The re-ranker that built this index (the class its manifest names: MICE, ColBERT, split
        PreTTR, …), loaded from the model its manifest names (or ``model``: a folder or hub id of the
        same weights), with this index attached and checked against it (a different model, tokenizer
        or document length is refused). ``kwargs`` are the re-ranker's (``batch_size``, ``device``, …);
        the document length defaults to the index's."""
        import importlib

        m = self.manifest
        model = model or m.get("model_name")
        if not model:
            raise MiceIndexError(
                f"{self.path} does not record where its model was loaded from (it was built by a re-ranker "
                "made in memory); pass it: index.reranker(model='folder or hub id')"
            )
        module, _, name = m.get("reranker_class", "").partition(":")
        if not module:
            raise MiceIndexError(f"{self.path} does not record its re-ranker's class; rebuild it with this version")
        cls = getattr(importlib.import_module(module), name)  # the class that built it, as a pickle names it
        if "doc_max_length" in inspect_parameters(cls):
            kwargs.setdefault("doc_max_length", m["doc_max_length"])
        return cls.from_pretrained(model, index=self, **kwargs)

    # ------------------------------------------------------------------ building
    def indexer(self, reranker, **options):
        """An indexer encoding documents with ``reranker`` (a MICE, ColBERT or split PreTTR re-ranker)
        into this index; ``options`` are :class:`~pyterrier_mice.index.build.MiceIndexer`'s (``kv``,
        ``storage``, ``batch_size``, ``overwrite``, ``verbose``, ``text_field``, ``wait``, ``shard``)."""
        from .build import MiceIndexer

        return MiceIndexer(self, reranker, **options)

    def index(self, it, reranker=None, **kwargs) -> "MiceIndex":
        if reranker is None:
            raise TypeError("MiceIndex.index needs reranker=... (or use .indexer(reranker))")
        return self.indexer(reranker, **kwargs).index(it)
