"""Re-rankers that encode queries and documents apart (MICE, ColBERT, split PreTTR): the base
:class:`SplitReranker` and the reads of stored document memories."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pandas as pd
import torch

from . import profiling
from .base import Reranker, run_batched
from .text import InputBuilder, tokenize


def pad_tensors(tensors: list[torch.Tensor], dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``[L_i, ...]`` tensors into ``[B, L, ...]`` (cast to ``dtype`` if given) plus a
    0/1 mask ``[B, L]``."""
    out = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)
    if dtype is not None and out.dtype != dtype:
        out = out.to(dtype)
    return out, length_mask([t.shape[0] for t in tensors], out.shape[1], out.device)


def pad_ids(seqs, value: int, device=None) -> torch.Tensor:
    """Token id sequences (lists or arrays) right-padded with ``value`` into ``[B, L]``."""
    n = max(len(t) for t in seqs)
    out = torch.full((len(seqs), n), value, dtype=torch.long)
    for i, t in enumerate(seqs):
        out[i, : len(t)] = torch.as_tensor(np.asarray(t, dtype=np.int64))
    return out.to(device)


def length_mask(lengths, n: int, device=None) -> torch.Tensor:
    """0/1 ``[B, n]``: the first ``lengths[i]`` positions of row i."""
    return (torch.arange(n, device=device)[None] < torch.as_tensor(lengths, device=device)[:, None]).long()


class StoredMemory:
    """A document's memory left in the index, read when (and as much as) it is needed: its whole
    memory, or one interaction layer of stored K/V at a time."""

    __slots__ = ("index", "row", "length", "device")

    def __init__(self, index, row: int, device):
        self.index, self.row, self.device = index, row, device
        self.length = index.doc_length(row)

    def read(self, layer: int | None = None) -> torch.Tensor:
        return self.index.read(self.row, layer).to(self.device)


def gather_padded(
    memories: list, dtype: torch.dtype, layer: int | None = None, buffer: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, L, ...]`` of document memories (tensors or :class:`StoredMemory`; with ``layer``, that
    layer of each one's K/V) padded with zeros and cast to ``dtype``, plus the 0/1 mask ``[B, L]``.
    Stored memories are copied straight from the index into the batch, converted in that one copy;
    into ``buffer`` (a float32 array of the padded shape, see :func:`padded_buffer`) when given, so
    that reading layer after layer reuses one block of memory instead of faulting in a new one."""
    with profiling.section("read"):
        return _gather_padded(memories, dtype, layer, buffer)


def padded_buffer(memories: list, layer: int | None = None, pool: "ReadBuffer | None" = None) -> np.ndarray | None:
    """An uninitialised float32 array that :func:`gather_padded` can fill for ``memories`` (None
    when none of them is stored: the batch is then padded from tensors), taken from ``pool`` if given."""
    stored = next((m for m in memories if isinstance(m, StoredMemory)), None)
    if stored is None:
        return None
    shape = (len(memories), max(memory_length(m) for m in memories), *stored.index.memory_shape(layer))
    return pool.get(shape) if pool is not None else np.empty(shape, dtype=np.float32)


class ReadBuffer:
    """One float32 block per thread that reads from an index reuse, batch after batch and call
    after call (grown when a batch needs more): hundreds of MB of padded K/V are not faulted in
    afresh for every batch. It stays allocated while its re-ranker lives (:meth:`clear` frees it)
    and is never pickled. Only for memories used up before the next read (no autograd)."""

    def __init__(self):
        self._blocks: dict[int, np.ndarray] = {}

    def get(self, shape: tuple) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        key = threading.get_ident()
        block = self._blocks.get(key)
        if block is None or block.size < n:
            self._blocks.pop(key, None)  # the old block goes before the larger one is allocated
            self._blocks[key] = block = np.empty(n, dtype=np.float32)
        return block[:n].reshape(shape)

    def clear(self) -> None:
        self._blocks.clear()

    def __getstate__(self):
        return {"_blocks": {}}


def _gather_padded(memories, dtype, layer, buffer):
    lengths = [memory_length(m) for m in memories]
    if all(not isinstance(m, StoredMemory) for m in memories):
        parts = memories if layer is None else [m[:, layer] for m in memories]
        return pad_tensors(parts, dtype)
    out = padded_buffer(memories, layer) if buffer is None else buffer
    device = next(m for m in memories if isinstance(m, StoredMemory)).device
    for i, m in enumerate(memories):
        if isinstance(m, StoredMemory):
            m.index.read_into(m.row, layer, out[i, : m.length])
        else:
            out[i, : m.shape[0]] = (m if layer is None else m[:, layer]).float().cpu().numpy()
        out[i, lengths[i] :] = 0  # padding: masked, but zero as in pad_tensors
    return torch.from_numpy(out).to(device=device, dtype=dtype), length_mask(lengths, out.shape[1], device)


def materialise(memories: list) -> list[torch.Tensor]:
    """Document memories as tensors (reading :class:`StoredMemory` handles whole)."""
    return [m.read() if isinstance(m, StoredMemory) else m for m in memories]


def memory_length(m) -> int:
    return m.length if isinstance(m, StoredMemory) else m.shape[0]


class SplitReranker(Reranker):
    """Base of re-rankers whose documents can be encoded without the query.

    :class:`SplitReranker` encodes each distinct query of a frame once and each distinct document
    once, processes documents ``batch_size`` at a time (longest first), scores every pair that uses
    them right away, and reads document states from a :class:`~pyterrier_mice.MiceIndex`
    when one is given (falling back to encoding for documents it does not hold). Queries and
    documents are cut at ``query_max_length`` and ``doc_max_length`` tokens.

    Subclasses implement the hooks ``query_sequences``, ``doc_sequences``, ``encode_queries``,
    ``encode_docs``, ``score_batch`` (and ``doc_extras``/``fingerprint_modules`` for the index).
    """

    length_options = ("query_max_length", "doc_max_length")

    def __init__(self, model, tokenizer, *, index=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self._inputs = InputBuilder(tokenizer)
        if isinstance(index, (str, os.PathLike)):
            from ..index import MiceIndex

            index = MiceIndex(index)
        self.index = index
        self.read_buffer = ReadBuffer()  # reused by the reads from the index (see ReadBuffer)
        self.last_stats: dict[str, int] = {}

    @property
    def not_indexable(self) -> str | None:
        """Why an index cannot serve this re-ranker's model (its answer), or None."""
        return getattr(self.model.config, "not_indexable", None)

    def _attach_index(self) -> None:
        """Check the index against this re-ranker (call once lengths are set)."""
        if self.index is not None:
            if self.not_indexable:
                raise ValueError(self.not_indexable)
            self.index.check_reranker(self)

    # ------------------------------------------------------------------ hooks
    def query_sequences(self, queries: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def doc_sequences(self, docs: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def encode_queries(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        raise NotImplementedError

    def encode_docs(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """Per-document states ``[L_i, ...]`` (what an index stores)."""
        raise NotImplementedError

    def doc_extras(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Optional query-independent extras derived from states (e.g. MICE's K/V)."""
        raise NotImplementedError(f"{type(self).__name__} stores no extras")

    def score_batch(self, q: list[torch.Tensor], d: list, q_ids=None, d_ids=None) -> torch.Tensor:
        """Scores ``[B]`` of aligned query encodings and document memories: tensors, or
        :class:`StoredMemory` handles into the index (stored dtype, cast to the queries' here);
        with :attr:`uses_token_ids`, also the aligned token ids of each query and document."""
        raise NotImplementedError

    @property
    def uses_token_ids(self) -> bool:
        """Whether scoring reads the token ids of queries and documents (then stored in an index)."""
        return False

    def fingerprint_modules(self, with_extras: bool) -> list[torch.nn.Module]:
        """The modules whose weights the stored document states (and extras) depend on."""
        return [self.model]

    # ------------------------------------------------------------------ helpers for hooks
    def _singles(self, texts, max_length, what) -> list[list[int]]:
        """``[CLS] x [SEP]`` ids of each text, truncated to ``max_length`` with a warning."""
        with profiling.section("tokenise"):
            singles = [self._inputs.single(t, max_length) for t in tokenize(self.tokenizer, texts)]
        self._warn_truncated(sum(s[1] for s in singles), len(singles), what, max_length)
        return [s[0] for s in singles]

    def _run_encoder(self, seqs, encode, length=None, valid=None, pad_id=None) -> list[torch.Tensor]:
        """``encode(input_ids, attention_mask)`` over ``seqs`` batched longest first; row i
        trimmed to ``valid[i]`` positions (default: its length; ``length`` pads to a fixed size
        with ``pad_id``, default the tokenizer's pad token)."""
        order = np.argsort([-len(s) for s in seqs], kind="stable")
        out: list[torch.Tensor | None] = [None] * len(seqs)

        def run(idx):
            batch = self._to_device(self._inputs.batch([seqs[i] for i in idx], length=length, pad_id=pad_id))
            with profiling.section("encode"):
                x = encode(batch["input_ids"], batch["attention_mask"])
            for j, i in enumerate(idx):
                out[i] = x[j, : (valid[i] if valid is not None else len(seqs[i]))]
            return np.zeros(len(idx))

        run_batched(order, self.batch_size, run)
        return out

    # ------------------------------------------------------------------ documents
    def _encode_memory(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """Fresh document memories, in the form the index stores (states, or extras such as K/V)."""
        fresh = self.encode_docs(seqs)
        if self.index is not None and self.index.has_extras:
            fresh = self.doc_extras(fresh)
        return fresh

    # ------------------------------------------------------------------ scoring
    def forward_pairs(self, queries, docs):
        """Differentiable scores of aligned pairs; each distinct query/document encoded once."""
        q_codes, q_uniq = pd.factorize(pd.Series(list(queries)))
        d_codes, d_uniq = pd.factorize(pd.Series(list(docs)))
        q_seqs, d_seqs = self.query_sequences(list(q_uniq)), self.doc_sequences(list(d_uniq))
        q_enc, d_enc = self.encode_queries(q_seqs), self.encode_docs(d_seqs)
        ids = (
            {"q_ids": [q_seqs[i] for i in q_codes], "d_ids": [d_seqs[j] for j in d_codes]}
            if self.uses_token_ids
            else {}
        )
        return self.score_batch([q_enc[i] for i in q_codes], [d_enc[j] for j in d_codes], **ids)

    def _score(self, queries, docnos, docs, qidx, didx):
        q_seqs = self.query_sequences(list(queries))
        q_enc = self.encode_queries(q_seqs)
        # documents the index holds (same docno, same raw text) are read, never tokenised
        with profiling.section("lookup"):
            rows = self.index.lookup_texts(docnos, docs) if self.index is not None else [None] * len(docs)
        missing = [j for j, r in enumerate(rows) if r is None]
        if missing and self.index is not None:
            self._say_text_differs(sum(docnos[j] in self.index for j in missing), len(docs))
        seqs = dict(zip(missing, self.doc_sequences([docs[j] for j in missing]))) if missing else {}
        self.last_stats = {"encoded": len(missing)}
        if self.index is not None:
            self.last_stats["from_index"] = len(docs) - len(missing)
        lengths = [len(seqs[j]) if r is None else self.index.doc_length(r) for j, r in enumerate(rows)]
        pairs_of_doc: dict[int, list[int]] = {}
        for p, d in enumerate(didx):
            pairs_of_doc.setdefault(int(d), []).append(p)
        order = np.argsort([-n for n in lengths], kind="stable")
        scores = np.empty(len(qidx), dtype=np.float32)
        progress = self._progress(len(qidx), self.schematic["label"])

        def run(doc_batch):
            # stored memories stay in the index (and its dtype, e.g. fp16): score_batch reads and casts them
            memory = {j: StoredMemory(self.index, rows[j], self.device) for j in doc_batch if rows[j] is not None}
            todo = [j for j in doc_batch if rows[j] is None]
            if todo:
                memory.update(zip(todo, self._encode_memory([seqs[j] for j in todo])))
            pairs = [(p, j) for j in doc_batch for p in pairs_of_doc[int(j)]]
            doc_ids = (
                {j: seqs[j] if rows[j] is None else self.index.token_ids(rows[j]) for j in doc_batch}
                if self.uses_token_ids
                else None
            )
            for s in range(0, len(pairs), self.batch_size):
                sub = pairs[s : s + self.batch_size]
                ids = (
                    {"q_ids": [q_seqs[qidx[p]] for p, _ in sub], "d_ids": [doc_ids[j] for _, j in sub]}
                    if doc_ids is not None
                    else {}
                )
                with profiling.section("interaction"):
                    got = self.score_batch([q_enc[qidx[p]] for p, _ in sub], [memory[j] for _, j in sub], **ids)
                scores[[p for p, _ in sub]] = got.float().cpu().numpy()
                if progress is not None:
                    progress.update(len(sub))
            return np.zeros(len(doc_batch))

        run_batched(order, self.batch_size, run)
        if progress is not None:
            progress.close()
        return scores

    def _prior_scores(self, queries, docnos, docs, qidx, didx):
        """The prior's scores, each document the index holds (same docno, same raw text, embedded by this
        same prior) read from it rather than embedded."""
        if self.index is None or self.index.prior_digest != self.prior.digest():
            return super()._prior_scores(queries, docnos, docs, qidx, didx)
        rows = self.index.lookup_texts(docnos, docs)
        stored = [j for j, r in enumerate(rows) if r is not None]
        missing = [j for j, r in enumerate(rows) if r is None]
        d = torch.empty(len(docs), self.index.manifest["prior"]["dim"])
        d[stored] = self.index.prior_embeddings([rows[j] for j in stored])
        if missing:
            d[missing] = self.prior.embed([docs[j] for j in missing], "document").float().cpu()
        self.last_stats["prior_from_index"] = len(stored)
        return self.prior.embedded_scores(self.prior.embed(list(queries), "query"), d, qidx, didx)

    def _say_text_differs(self, changed: int, total: int) -> None:
        """Warn, once per re-ranker, that documents of the index were encoded because their text changed."""
        if not changed or getattr(self, "_said_text_differs", False):
            return
        self._said_text_differs = True
        stored = self.index.manifest.get("text_field")
        warnings.warn(
            f"{changed} of {total} documents are in the index {self.index.path} under their docno but with "
            f"another text, so they were encoded, not read (scores stay right, without the speed-up): the "
            f"frame's {self.text_field!r} column differs from the text the index stored (its builder's "
            f"text_field={stored!r}; `index build --corpus` stores title + text). Re-rank with the same "
            "text, or build the index from this column (indexer(..., text_field=...))",
            stacklevel=4,
        )

    def _config_key(self):
        return super()._config_key() + (None if self.index is None else os.path.abspath(self.index.path),)

    def _repr_args(self):
        return super()._repr_args() + ([f"index={self.index!r}"] if self.index is not None else [])
