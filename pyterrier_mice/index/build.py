"""Building a document-state index atomically (its own temporary directory, an exclusive lock,
renamed into place when complete), alone or as one shard of many."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Iterable, Iterator

import numpy as np
import pyterrier as pt
import torch

from ..progress import bar
from ..files import Busy, locked, no_space_errno, recover_replaced, replaced_whole, write_json
from .checksums import CHUNK_BYTES, ChecksumWriter
from .encoder import DOCUMENT_ENCODER_MEMBERS, DocumentEncoder
from .fingerprint import model_fingerprints, model_precision, tokenizer_fingerprint
from .layout import (
    ARTIFACT_FORMAT,
    ARTIFACT_TYPE,
    DOCNOS,
    EXTRAS,
    FORMAT_VERSION,
    MANIFEST,
    OFFSETS,
    PRIOR,
    SHARDS,
    STATES,
    TEXTS,
    TOKENS,
    MiceIndexError,
    decode_docnos,
    encode_docnos,
    text_hash,
)
from .storage_kinds import get_storage

#: what ``pt.Artifact.load`` reads to open an index with this package
PT_META = {"type": ARTIFACT_TYPE, "format": ARTIFACT_FORMAT, "package_hint": "pyterrier-mice"}


@contextlib.contextmanager
def build_lock(path: str, wait: bool | float):
    """Exclusive lock on ``<path>.lock`` for the duration of a build (``wait``: block, or seconds)."""
    try:
        with locked(path, wait, beside=True):
            yield
    except Busy:
        raise MiceIndexError(
            f"{path} is being built by another process (lock {path}.lock is held); wait for it "
            "to finish, pass wait=True to queue behind it, or build into another path"
        ) from None


def launcher_shard() -> tuple[int, int] | None:
    """``(rank, world_size)`` from the environment of ``torchrun`` / ``accelerate launch``, or None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def recorded_model_name(name) -> str | None:
    """What a manifest records of the model's name: a local folder as its absolute path (so that
    :meth:`MiceIndex.reranker` finds it from anywhere), a hub id as it is."""
    if name is not None and os.path.isdir(os.fspath(name)):
        return os.path.abspath(os.fspath(name))
    return None if name is None else os.fspath(name)


class EmptyCorpus(ValueError):
    """A build given no documents."""


def check_distinct_docnos(root: str, shards: list[str]) -> None:
    """Refuse to complete a sharded index in which a docno is stored by two shards (the corpus iterator
    gave it twice): it would never open."""
    seen: dict[str, str] = {}
    for name in shards:
        folder = os.path.join(root, SHARDS, name)
        with open(os.path.join(folder, MANIFEST), encoding="utf8") as f:
            n = json.load(f)["num_docs"]
        with open(os.path.join(folder, DOCNOS), "rb") as f:
            for docno in decode_docnos(f.read(), n):
                if docno in seen:
                    raise MiceIndexError(
                        f"{root}: docno {docno!r} is in shard {seen[docno]} and shard {name}: the corpus holds it "
                        "twice, so the index is not completed; drop the duplicates and build it again "
                        "(overwrite=True)"
                    )
                seen[docno] = name


class MiceIndexer(pt.Indexer):
    """Streams a corpus through a split re-ranker's document encoder and writes an index atomically.

    With ``shard=(rank, world_size)`` (``"auto"``: from ``torchrun``/``accelerate launch``'s
    environment) this worker encodes every ``world_size``-th document of the corpus, from the
    ``rank``-th on, into ``<path>/shards/<rank>``; the last worker to finish writes the root
    manifest, and the shards then read as one index.

    ``kv=True`` (MICE) also stores each interaction layer's keys and values; ``storage`` is the storage
    kind (``fp32``, ``fp16``, ``int8``, ``int4``, ``pq``, ``pq1``); ``batch_size``: documents per forward
    pass (default: the re-ranker's); ``text_field`` defaults to the re-ranker's; ``wait`` queues behind a
    build already running into the same path (True, or seconds) instead of failing; ``verbose``: a
    progress bar (default; ``PYTERRIER_MICE_PROGRESS=0`` silences every bar).
    """

    def __init__(
        self,
        index,
        reranker,
        *,
        kv=False,
        storage="fp16",
        batch_size=None,
        overwrite=False,
        verbose=True,
        text_field=None,
        wait: bool | float = False,
        shard=None,
    ):
        self.storage = get_storage(storage)
        if not isinstance(reranker, DocumentEncoder):
            missing = [n for n in DOCUMENT_ENCODER_MEMBERS if not hasattr(reranker, n)]
            raise TypeError(
                f"{type(reranker).__name__} cannot build a document-state index: it lacks {missing} "
                "(MICE, ColBERT and split PreTTR re-rankers can)"
            )
        if kv and not hasattr(reranker, "doc_extras"):
            raise ValueError(f"kv=True: {type(reranker).__name__} stores no keys/values")
        if reranker.not_indexable:
            raise ValueError(reranker.not_indexable)
        self.target = index
        self.reranker = reranker
        self.kv = kv
        self.storage_kind = storage
        self.batch_size = batch_size or reranker.batch_size
        self.overwrite = overwrite
        self.verbose = verbose
        self.text_field = text_field if text_field is not None else reranker.text_field
        self.wait = wait
        self.shard = launcher_shard() if shard == "auto" else shard
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise ValueError(f"shard={self.shard!r}: expected (rank, world_size) with 0 ≤ rank < world_size")

    def index_inputs(self) -> list[list[str]]:
        """The columns each document must have (for ``pt.inspect.indexer_inputs``)."""
        return [["docno", self.text_field]]

    def __repr__(self):
        return f"{type(self).__name__}({self.target.path!r}, {self.reranker!r}, storage={self.storage_kind!r})"

    def index(self, it: Iterable[dict]):
        if self.shard is None:
            self._build(os.path.abspath(self.target.path), it)
        else:
            self._build_shard(it)
        # the built index, opened afresh (the target's class: this module does not import the reader)
        return type(self.target)(self.target.path, verify=getattr(self.target, "verify_mode", "lazy"))

    def _build_shard(self, it: Iterable[dict]) -> None:
        root = os.path.abspath(self.target.path)
        rank, world = self.shard
        if os.path.exists(os.path.join(root, MANIFEST)) and not self.overwrite:
            raise FileExistsError(f"{root} already exists (pass overwrite=True to rebuild)")
        mine = (d for i, d in enumerate(it) if i % world == rank)
        try:
            self._build(os.path.join(root, SHARDS, f"{rank:05d}"), mine)
        except EmptyCorpus:
            raise MiceIndexError(
                f"{root}: shard {rank} of {world} got no documents (each worker builds every {world}th document "
                f"from its rank on, and the corpus holds fewer than {world}); build it with fewer workers"
            ) from None
        with build_lock(root, True):  # the last shard to finish makes the index whole
            names = [f"{r:05d}" for r in range(world)]
            if all(os.path.exists(os.path.join(root, SHARDS, n, MANIFEST)) for n in names):
                check_distinct_docnos(root, names)
                for name in os.listdir(root):  # what a previous unsharded index left at the root
                    if name not in (SHARDS,) and not name.endswith(".lock"):
                        full = os.path.join(root, name)
                        shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
                write_json(os.path.join(root, "pt_meta.json"), PT_META)
                write_json(
                    os.path.join(root, MANIFEST),
                    {
                        "format_version": FORMAT_VERSION,
                        "world_size": world,
                        "shards": [os.path.join(SHARDS, n) for n in names],
                    },
                )

    def _build(self, path: str, it: Iterable[dict]) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with build_lock(path, self.wait):
            recover_replaced(path)  # a build killed between its two renames left the previous index aside
            if os.path.exists(path) and not self.overwrite:
                raise FileExistsError(f"{path} already exists (pass overwrite=True to rebuild)")
            try:
                with replaced_whole(path) as tmp:  # the previous index, if any, stays whole until this one is
                    self._write(it, tmp)
            except OSError as e:
                if errno := no_space_errno(e):
                    raise MiceIndexError(
                        f"{path}: no space left to build the index ({os.strerror(errno)}); the previous "
                        "index, if any, is intact"
                    ) from None
                raise

    def _write(self, it: Iterable[dict], tmp: str) -> None:
        rr = self.reranker
        docnos, offsets, hashes, seen = [], [0], [], set()
        state_shape = extras_shape = None
        progress = bar(desc="indexing", unit="doc") if self.verbose else None
        states = self.storage.writer(tmp, STATES)
        extras = self.storage.writer(tmp, EXTRAS) if self.kv else None
        tokens = ChecksumWriter(os.path.join(tmp, TOKENS)) if getattr(rr, "uses_token_ids", False) else None
        # a model with a prior: each document's prior embedding too, so that re-ranking embeds none
        prior = getattr(rr, "prior", None)
        prior_file = ChecksumWriter(os.path.join(tmp, PRIOR)) if prior is not None else None
        prior_dim = None
        with rr.collect_truncation():
            for batch in _chunks(it, self.batch_size):
                texts = []
                for d in batch:
                    if "docno" not in d or self.text_field not in d:
                        raise KeyError(
                            f"indexing needs 'docno' and {self.text_field!r} in every document; got "
                            f"{list(d)} (pass text_field= to the indexer)"
                        )
                    docno = str(d["docno"])  # what the index stores, and what re-rankers look up
                    if docno in seen:
                        same = "" if docno == d["docno"] else f" (as the string {docno!r})"
                        raise ValueError(
                            f"docno {d['docno']!r}{same} is in the corpus twice: an index holds one document per "
                            "docno; drop the duplicates (or give them distinct docnos) and build again"
                        )
                    if "\n" in docno:
                        raise ValueError(f"docno {docno!r} contains a newline, which an index cannot store")
                    seen.add(docno)
                    texts.append(d[self.text_field] if isinstance(d[self.text_field], str) else "")
                seqs = rr.doc_sequences(texts)
                with torch.inference_mode():
                    enc = rr.encode_docs(seqs)
                    ext = rr.doc_extras(enc) if self.kv else None
                    if prior_file is not None:
                        embedded = prior.embed(texts, "document").float().cpu().numpy().astype("<f4")
                        prior_dim = embedded.shape[1]
                        prior_file.write(np.ascontiguousarray(embedded).tobytes())
                state_shape = list(enc[0].shape[1:])
                extras_shape = list(ext[0].shape[1:]) if self.kv else None
                for i, d in enumerate(batch):
                    states.write(enc[i])
                    if self.kv:
                        extras.write(ext[i])
                    if tokens is not None:
                        tokens.write(np.asarray(seqs[i], dtype="<i4").tobytes())
                    docnos.append(str(d["docno"]))
                    offsets.append(offsets[-1] + len(seqs[i]))
                    hashes.append(text_hash(texts[i]))
                if progress is not None:
                    progress.update(len(batch))
        if progress is not None:
            progress.close()
        checksums = states.close()
        if extras is not None:
            checksums.update(extras.close())
        if tokens is not None:
            checksums[TOKENS] = tokens.close()
        if prior_file is not None:
            checksums[PRIOR] = prior_file.close()
        if not docnos:
            raise EmptyCorpus("no documents to index: the corpus iterator was empty")
        for name, data in (
            (DOCNOS, encode_docnos(docnos)),
            (OFFSETS, _npy(np.asarray(offsets, dtype=np.int64))),
            (TEXTS, _npy(np.asarray(hashes, dtype=np.uint64))),
        ):
            with ChecksumWriter(os.path.join(tmp, name)) as w:
                w.write(data)
                checksums[name] = w.close()
        write_json(os.path.join(tmp, "pt_meta.json"), PT_META)
        manifest = {
            "format_version": FORMAT_VERSION,
            "num_docs": len(docnos),
            "num_tokens": offsets[-1],
            "reranker": type(rr).__name__,
            "reranker_class": f"{type(rr).__module__}:{type(rr).__qualname__}",
            "state_shape": state_shape,
            "extras_shape": extras_shape,
            "storage": self.storage.name,
            "doc_max_length": rr.doc_max_length,
            "model_precision": model_precision(rr),
            "model_fingerprints": model_fingerprints(rr, self.kv),
            "tokenizer_fingerprint": tokenizer_fingerprint(rr.tokenizer),
            "model_name": recorded_model_name(rr.model_name),
            "token_ids": tokens is not None,
            "text_field": self.text_field,
            "prior": None if prior is None else {"digest": prior.digest(), "dim": prior_dim},
            "checksums": {"algorithm": "crc32", "chunk_bytes": CHUNK_BYTES, "files": checksums},
        }
        write_json(os.path.join(tmp, MANIFEST), manifest)


def _npy(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _chunks(it: Iterable[dict], n: int) -> Iterator[list[dict]]:
    batch = []
    for d in it:
        batch.append(d)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
