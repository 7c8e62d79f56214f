"""Re-rankers that encode queries and documents apart (MICE, ColBERT, split PreTTR).

:class:`SplitReranker` encodes each distinct query of a frame once and each distinct document
once, processes documents ``batch_size`` at a time (longest first), scores every pair that uses
them right away, and reads document states from a :class:`~pyterrier_mice.DocStateIndex`
when one is given (falling back to encoding for documents it does not hold).

Subclasses implement the hooks ``query_sequences``, ``doc_sequences``, ``encode_queries``,
``encode_docs``, ``score_batch`` (and ``doc_extras``/``fingerprint_modules`` for the index).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from .reranker_base import Reranker, run_batched
from .text import InputBuilder, tokenize


def pad_tensors(tensors: list[torch.Tensor], dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``[L_i, ...]`` tensors into ``[B, L, ...]`` (cast to ``dtype`` if given) plus a
    0/1 mask ``[B, L]``."""
    n = max(t.shape[0] for t in tensors)
    out = torch.zeros((len(tensors), n, *tensors[0].shape[1:]), dtype=dtype or tensors[0].dtype,
                      device=tensors[0].device)
    mask = torch.zeros((len(tensors), n), dtype=torch.long, device=tensors[0].device)
    for i, t in enumerate(tensors):
        out[i, :t.shape[0]] = t
        mask[i, :t.shape[0]] = 1
    return out, mask


class SplitReranker(Reranker):
    """Base of re-rankers whose documents can be encoded without the query (see module doc)."""

    def __init__(self, model, tokenizer, *, index=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self._inputs = InputBuilder(tokenizer)
        if isinstance(index, (str, os.PathLike)):
            from .index import DocStateIndex
            index = DocStateIndex(index)
        self.index = index
        self.last_stats: dict[str, int] = {}

    def _attach_index(self) -> None:
        """Check the index against this re-ranker (call once lengths are set)."""
        if self.index is not None:
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

    def score_batch(self, q: list[torch.Tensor], d: list[torch.Tensor]) -> torch.Tensor:
        """Scores ``[B]`` of aligned query encodings and document memories; memories read from an
        index come in its stored dtype (e.g. fp16) and are cast to the queries' dtype here."""
        raise NotImplementedError

    def fingerprint_modules(self, with_extras: bool) -> list[torch.nn.Module]:
        """The modules whose weights the stored document states (and extras) depend on."""
        return [self.model]

    # ------------------------------------------------------------------ helpers for hooks
    def _singles(self, texts, max_length, what) -> list[list[int]]:
        """``[CLS] x [SEP]`` ids of each text, truncated to ``max_length`` with a warning."""
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
            x = encode(batch["input_ids"], batch["attention_mask"])
            for j, i in enumerate(idx):
                out[i] = x[j, :(valid[i] if valid is not None else len(seqs[i]))]
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
        q_enc = self.encode_queries(self.query_sequences(list(q_uniq)))
        d_enc = self.encode_docs(self.doc_sequences(list(d_uniq)))
        return self.score_batch([q_enc[i] for i in q_codes], [d_enc[j] for j in d_codes])

    def _score(self, queries, docnos, docs, qidx, didx):
        q_enc = self.encode_queries(self.query_sequences(list(queries)))
        # documents the index holds (same docno, same raw text) are read, never tokenised
        rows = self.index.lookup_texts(docnos, docs) if self.index is not None else [None] * len(docs)
        missing = [j for j, r in enumerate(rows) if r is None]
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
            # stored memories stay in the index's dtype (e.g. fp16): score_batch casts them as it pads them
            memory = {j: self.index.read(rows[j]).to(self.device) for j in doc_batch if rows[j] is not None}
            todo = [j for j in doc_batch if rows[j] is None]
            if todo:
                memory.update(zip(todo, self._encode_memory([seqs[j] for j in todo])))
            pairs = [(p, j) for j in doc_batch for p in pairs_of_doc[int(j)]]
            for s in range(0, len(pairs), self.batch_size):
                sub = pairs[s:s + self.batch_size]
                got = self.score_batch([q_enc[qidx[p]] for p, _ in sub], [memory[j] for _, j in sub])
                scores[[p for p, _ in sub]] = got.float().cpu().numpy()
                if progress is not None:
                    progress.update(len(sub))
            return np.zeros(len(doc_batch))

        run_batched(order, self.batch_size, run)
        if progress is not None:
            progress.close()
        return scores

    def _config_key(self):
        return super()._config_key() + (None if self.index is None else os.path.abspath(self.index.path),)

    def _repr_args(self):
        return super()._repr_args() + ([f"index={self.index!r}"] if self.index is not None else [])
