"""An on-disk index of precomputed document states, so that re-ranking skips document encoding.

One store serves every re-ranker that encodes documents apart from the query: MICE (states
after ℓ* layers, optionally each interaction layer's K/V), ColBERT (token embeddings) and
split PreTTR (states after ℓ layers).

Layout of an index directory (all arrays memory-mapped, nothing loaded whole)::

    pt_meta.json     PyTerrier artifact metadata (type ``doc_states``, format ``mice``)
    manifest.json    model fingerprint, shapes, dtype, counts; written last
    docnos.txt       one docno per line
    offsets.npy      int64 [n+1]: token offsets of each document in the state arrays
    tokens.npy       uint64 [n]: hash of each document's token ids (detects changed text)
    states.bin       [total_tokens, *state_shape] per-token document states
    extras.bin       optional [total_tokens, *extras_shape] (MICE: each interaction layer's K/V)

An index is built in a sibling ``<path>.building`` directory and renamed into place only when
complete, so a crash mid-build never leaves an index that loads. Loading checks the manifest,
file sizes and the model's fingerprint; a mismatch is a clear error, never a wrong score.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from typing import Iterable, Iterator

import numpy as np
import pyterrier as pt
import torch

FORMAT_VERSION = 1
ARTIFACT_TYPE, ARTIFACT_FORMAT = "doc_states", "mice"  # the package's store, whatever the model
_DTYPES = {"fp16": np.float16, "fp32": np.float32}


class MiceIndexError(ValueError):
    """A corrupt, incomplete or mismatched document-state index."""


def token_hash(ids: Iterable[int]) -> int:
    return int.from_bytes(hashlib.blake2b(np.asarray(list(ids), dtype=np.int64).tobytes(),
                                          digest_size=8).digest(), "little")


_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "_commit_hash", "architectures",
                         "dtype", "torch_dtype", "_attn_implementation", "_attn_implementation_autoset"}


def _stable(d):
    """A config dict without the keys that change on save/load or with the run-time dtype."""
    if isinstance(d, dict):
        return {k: _stable(v) for k, v in sorted(d.items()) if k not in _VOLATILE_CONFIG_KEYS}
    return d


def model_fingerprint(reranker, with_extras: bool) -> str:
    """Hash of the model's config and of every weight the stored states depend on."""
    config = json.loads(reranker.model.config.to_json_string(use_diff=False))
    h = hashlib.sha256(json.dumps(_stable(config), sort_keys=True).encode())
    for m in reranker.fingerprint_modules(with_extras):
        for name, p in m.state_dict().items():
            h.update(name.encode())
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class DocStateIndex(pt.Artifact, pt.Indexer):
    """Precomputed document states of a split re-ranker (MICE, ColBERT, PreTTR).

    Build: ``DocStateIndex(path).indexer(reranker).index(corpus_iter)``.
    Use:   ``MiceReranker.from_pretrained(name, index=DocStateIndex(path))``.
    """

    ARTIFACT_TYPE = ARTIFACT_TYPE
    ARTIFACT_FORMAT = ARTIFACT_FORMAT

    def __init__(self, path: str):
        super().__init__(path)
        self.path = os.fspath(path)
        self._loaded = False

    def __repr__(self):
        return f"{type(self).__name__}({self.path!r})"

    # ------------------------------------------------------------------ reading
    def built(self) -> bool:
        return os.path.exists(os.path.join(self.path, "manifest.json"))

    def _load(self) -> None:
        if self._loaded:
            return
        mpath = os.path.join(self.path, "manifest.json")
        if not os.path.exists(mpath):
            hint = " (an interrupted build left only a '.building' directory)" if os.path.exists(
                self.path + ".building") else ""
            raise MiceIndexError(f"{self.path!r} is not a built document-state index: no manifest.json{hint}")
        try:
            with open(mpath) as f:
                self.manifest = json.load(f)
            m = self.manifest
            if m.get("format_version") != FORMAT_VERSION:
                raise MiceIndexError(f"{self.path}: index format {m.get('format_version')} is not {FORMAT_VERSION}")
            n, total = m["num_docs"], m["num_tokens"]
            with open(os.path.join(self.path, "docnos.txt"), encoding="utf8") as f:
                self.docnos = f.read().split("\n")[:n]
            if len(self.docnos) != n:
                raise MiceIndexError(f"{self.path}/docnos.txt holds {len(self.docnos)} docnos, manifest says {n}")
            self.offsets = np.load(os.path.join(self.path, "offsets.npy"), mmap_mode="r")
            self.token_hashes = np.load(os.path.join(self.path, "tokens.npy"), mmap_mode="r")
            if self.offsets.shape != (n + 1,) or int(self.offsets[-1]) != total or self.token_hashes.shape != (n,):
                raise MiceIndexError(f"{self.path}: offsets.npy/tokens.npy do not match the manifest")
            dt = _DTYPES[m["dtype"]]
            self.states = self._memmap("states.bin", dt, (total, *m["state_shape"]))
            self.extras = self._memmap("extras.bin", dt, (total, *m["extras_shape"])) if m["extras_shape"] else None
        except (OSError, ValueError, KeyError) as e:
            if isinstance(e, MiceIndexError):
                raise
            raise MiceIndexError(f"{self.path}: corrupt document-state index ({type(e).__name__}: {e})") from e
        self.lookup = {d: i for i, d in enumerate(self.docnos)}
        self._loaded = True

    def _memmap(self, name, dtype, shape):
        path = os.path.join(self.path, name)
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        size = os.path.getsize(path) if os.path.exists(path) else -1
        if size != expected:
            raise MiceIndexError(f"{path}: {size} bytes, expected {expected} (truncated or corrupt index)")
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)

    def __len__(self) -> int:
        self._load()
        return len(self.docnos)

    @property
    def has_extras(self) -> bool:
        self._load()
        return self.extras is not None

    def check_reranker(self, reranker) -> None:
        """Refuse a re-ranker whose model, kind or document length differs from the build's."""
        self._load()
        m = self.manifest
        if m["reranker"] != type(reranker).__name__:
            raise MiceIndexError(f"{self.path} holds {m['reranker']} states, not {type(reranker).__name__} states")
        if m["doc_max_length"] != reranker.doc_max_length:
            raise MiceIndexError(f"{self.path} was built with doc_max_length={m['doc_max_length']}, "
                                 f"the re-ranker uses {reranker.doc_max_length}")
        if model_fingerprint(reranker, self.has_extras) != m["model_fingerprint"]:
            raise MiceIndexError(f"{self.path} was built with a different model (fingerprint mismatch: "
                                 f"config or weights differ); rebuild the index for this model")

    def lookup_docs(self, docnos, seqs) -> list[int | None]:
        """Index row of each docno whose stored token ids equal ``seqs``, else None."""
        self._load()
        rows = []
        for d, s in zip(docnos, seqs):
            i = self.lookup.get(d)
            rows.append(i if i is not None and int(self.token_hashes[i]) == token_hash(s) else None)
        return rows

    def read(self, row: int) -> torch.Tensor:
        """The stored memory of a document: its extras if the index has them, else its states."""
        arr = self.extras if self.extras is not None else self.states
        return torch.from_numpy(np.array(arr[self.offsets[row]:self.offsets[row + 1]]))

    # ------------------------------------------------------------------ building
    def indexer(self, reranker, *, kv: bool = False, dtype: str = "fp16", batch_size: int | None = None,
                overwrite: bool = False, verbose: bool = False, text_field: str = "text") -> "DocStateIndexer":
        """An indexer encoding documents with ``reranker`` (MICE, ColBERT or PreTTR re-ranker).

        ``kv=True`` (MICE only) also stores each interaction layer's keys and values.
        """
        return DocStateIndexer(self, reranker, kv=kv, dtype=dtype, batch_size=batch_size,
                               overwrite=overwrite, verbose=verbose, text_field=text_field)

    def index(self, it: Iterable[dict], reranker=None, **kwargs) -> "DocStateIndex":
        if reranker is None:
            raise TypeError("DocStateIndex.index needs reranker=... (or use .indexer(reranker))")
        return self.indexer(reranker, **kwargs).index(it)


MiceIndex = DocStateIndex


class DocStateIndexer(pt.Indexer):
    """Streams a corpus through a split re-ranker's document encoder and writes an index atomically."""

    def __init__(self, index: DocStateIndex, reranker, *, kv=False, dtype="fp16", batch_size=None,
                 overwrite=False, verbose=False, text_field="text"):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype={dtype!r}; expected one of {list(_DTYPES)}")
        self.target = index
        self.reranker = reranker
        self.kv = kv
        self.dtype = dtype
        self.batch_size = batch_size or reranker.batch_size
        self.overwrite = overwrite
        self.verbose = verbose
        self.text_field = text_field

    def index(self, it: Iterable[dict]) -> DocStateIndex:
        path = self.target.path
        if os.path.exists(path):
            if not self.overwrite:
                raise FileExistsError(f"{path} already exists (pass overwrite=True to rebuild)")
        tmp = path + ".building"
        shutil.rmtree(tmp, ignore_errors=True)  # a previous interrupted build
        os.makedirs(tmp)
        rr = self.reranker
        dt = _DTYPES[self.dtype]
        docnos, offsets, hashes, seen = [], [0], [], set()
        state_shape = extras_shape = None
        progress = pt.tqdm(desc="indexing", unit="doc") if self.verbose else None
        with open(os.path.join(tmp, "states.bin"), "wb") as fs, \
                open(os.path.join(tmp, "extras.bin"), "wb") if self.kv else contextlib.nullcontext() as fkv, \
                rr.collect_truncation():
            for batch in _chunks(it, self.batch_size):
                for d in batch:
                    if "docno" not in d or self.text_field not in d:
                        raise KeyError(f"indexing needs 'docno' and {self.text_field!r} in every document; got {list(d)}")
                    if d["docno"] in seen:
                        raise ValueError(f"duplicate docno {d['docno']!r} while indexing")
                    if "\n" in str(d["docno"]):
                        raise ValueError(f"docno {d['docno']!r} contains a newline")
                    seen.add(d["docno"])
                texts = [d[self.text_field] if isinstance(d[self.text_field], str) else "" for d in batch]
                seqs = rr.doc_sequences(texts)
                with torch.inference_mode():
                    states = rr.encode_docs(seqs)
                    extras = rr.doc_extras(states) if self.kv else None
                state_shape = list(states[0].shape[1:])
                extras_shape = list(extras[0].shape[1:]) if self.kv else None
                for i, d in enumerate(batch):
                    fs.write(states[i].float().cpu().numpy().astype(dt).tobytes())
                    if self.kv:
                        fkv.write(extras[i].float().cpu().numpy().astype(dt).tobytes())
                    docnos.append(str(d["docno"]))
                    offsets.append(offsets[-1] + len(seqs[i]))
                    hashes.append(token_hash(seqs[i]))
                if progress is not None:
                    progress.update(len(batch))
        if progress is not None:
            progress.close()
        if not docnos:
            shutil.rmtree(tmp)
            raise ValueError("no documents to index: the corpus iterator was empty")
        with open(os.path.join(tmp, "docnos.txt"), "w", encoding="utf8") as f:
            f.write("\n".join(docnos))
        np.save(os.path.join(tmp, "offsets.npy"), np.asarray(offsets, dtype=np.int64))
        np.save(os.path.join(tmp, "tokens.npy"), np.asarray(hashes, dtype=np.uint64))
        with open(os.path.join(tmp, "pt_meta.json"), "w") as f:
            json.dump({"type": ARTIFACT_TYPE, "format": ARTIFACT_FORMAT, "package_hint": "pyterrier-mice"}, f)
        manifest = {
            "format_version": FORMAT_VERSION, "num_docs": len(docnos), "num_tokens": offsets[-1],
            "reranker": type(rr).__name__, "state_shape": state_shape, "extras_shape": extras_shape,
            "dtype": self.dtype, "doc_max_length": rr.doc_max_length,
            "model_fingerprint": model_fingerprint(rr, self.kv), "model_name": rr.model_name,
        }
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
        return DocStateIndex(path)


def _chunks(it: Iterable[dict], n: int) -> Iterator[list[dict]]:
    batch = []
    for d in it:
        batch.append(d)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
