"""``MiceReranker``: MICE as a PyTerrier re-ranker, encoding each distinct query and each
distinct document of a frame once (not once per pair)."""
from __future__ import annotations

import os

import numpy as np
import torch

from .attention import merge_heads, split_heads
from .index import MiceIndex, token_hash
from .modeling_base import load_tokenizer
from .modeling_mice import MiceModel
from .reranker_base import Reranker, logits_to_scores, run_batched
from .text import InputBuilder, tokenize


def _pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``[L_i, ...]`` tensors into ``[B, L, ...]`` plus a 0/1 mask ``[B, L]``."""
    n = max(s.shape[0] for s in states)
    out = states[0].new_zeros((len(states), n, *states[0].shape[1:]))
    mask = torch.zeros((len(states), n), dtype=torch.long, device=states[0].device)
    for i, s in enumerate(states):
        out[i, :s.shape[0]] = s
        mask[i, :s.shape[0]] = 1
    return out, mask


class MiceReranker(Reranker):
    """Re-ranks with a :class:`~pyterrier_mice.MiceModel`.

    Queries and documents are truncated independently to ``query_max_length`` /
    ``doc_max_length`` tokens (default: the backbone's position limit). Each distinct query
    and document in a frame is encoded once; documents are processed ``batch_size`` at a time,
    longest first, and every pair that uses them is scored right after.
    """

    schematic = {"label": "MICE", "help_url": None}

    def __init__(self, model: MiceModel, tokenizer, *, query_max_length: int | None = None,
                 doc_max_length: int | None = None, index: MiceIndex | None = None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        max_pos = model.encoder.config.max_position_embeddings
        self.query_max_length = query_max_length or max_pos
        self.doc_max_length = doc_max_length or self.max_length or max_pos
        self._inputs = InputBuilder(tokenizer)
        self.index = index
        if index is not None:
            index.check_model(self.model, self.doc_max_length)
        self.last_stats: dict[str, int] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "MiceReranker":
        """Load a saved :class:`MiceModel` (directory or hub id) and its tokenizer.

        Pass ``index=MiceIndex(path)`` to read document states from a precomputed index.
        """
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls(MiceModel.from_pretrained(name_or_path), tokenizer, model_name=name_or_path, **kwargs)

    # ------------------------------------------------------------------ encoding
    def _singles(self, texts, max_length, what) -> list[list[int]]:
        """``[CLS] x [SEP]`` ids of each text, truncated to ``max_length`` with a warning."""
        singles = [self._inputs.single(t, max_length) for t in tokenize(self.tokenizer, texts)]
        self._warn_truncated(sum(s[1] for s in singles), len(singles), what, max_length)
        return [s[0] for s in singles]

    def _encode(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """Bottom-layer states ``[L_i, H]`` of each sequence, batched longest first."""
        order = np.argsort([-len(s) for s in seqs], kind="stable")
        states: list[torch.Tensor | None] = [None] * len(seqs)

        def run(idx):
            batch = self._to_device(self._inputs.batch([seqs[i] for i in idx]))
            x = self.model.encode(batch["input_ids"], batch["attention_mask"])
            for j, i in enumerate(idx):
                states[i] = x[j, :len(seqs[i])]
            return np.zeros(len(idx))

        run_batched(order, self.batch_size, run)
        return states

    def _kv_of_states(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-document keys/values ``[L_i, k, 2, H]`` of every interaction layer."""
        padded, _ = _pad_states(states)
        kv = self.model.document_kv(padded)  # k × (keys, values) [B, heads, L, d]
        stacked = torch.stack([torch.stack([merge_heads(k), merge_heads(v)], dim=2) for k, v in kv], dim=2)
        return [stacked[i, :s.shape[0]] for i, s in enumerate(states)]

    def _doc_memory(self, docnos: list[str], seqs: list[list[int]]):
        """``(states, kv)`` for documents: one of them is a list of per-document tensors.

        Documents found in the index (same docno and same tokens) are read from it; the others
        are encoded on the fly.
        """
        if self.index is None:
            self.last_stats["encoded"] = self.last_stats.get("encoded", 0) + len(seqs)
            return self._encode(seqs), None
        rows = self.index.lookup_docs(docnos, [token_hash(s) for s in seqs])
        missing = [j for j, r in enumerate(rows) if r is None]
        encoded = self._encode([seqs[j] for j in missing]) if missing else []
        self.last_stats["encoded"] = self.last_stats.get("encoded", 0) + len(missing)
        self.last_stats["from_index"] = self.last_stats.get("from_index", 0) + len(seqs) - len(missing)
        use_kv = self.index.manifest["kv"]
        read = self.index.doc_kv if use_kv else self.index.doc_states
        dtype = next(self.model.parameters()).dtype
        out = [None if r is None else torch.from_numpy(np.asarray(read(r))).to(self.device, dtype) for r in rows]
        fresh = self._kv_of_states(encoded) if use_kv and encoded else encoded
        for j, t in zip(missing, fresh):
            out[j] = t
        return (None, out) if use_kv else (out, None)

    # ------------------------------------------------------------------ scoring
    def _score(self, queries, docnos, docs, qidx, didx):
        self.last_stats = {}
        q_states = self._encode(self._singles(queries, self.query_max_length, "queries"))
        d_seqs = self._singles(docs, self.doc_max_length, "documents")
        pairs_of_doc: dict[int, list[int]] = {}
        for p, d in enumerate(didx):
            pairs_of_doc.setdefault(int(d), []).append(p)
        order = np.argsort([-len(s) for s in d_seqs], kind="stable")
        scores = np.empty(len(qidx), dtype=np.float32)
        progress = self._progress(len(qidx), "MICE")

        def run(doc_batch):
            d_states, d_kv = self._doc_memory([docnos[i] for i in doc_batch], [d_seqs[i] for i in doc_batch])
            pairs = [(p, j) for j, d in enumerate(doc_batch) for p in pairs_of_doc[int(d)]]
            for s in range(0, len(pairs), self.batch_size):
                sub = pairs[s:s + self.batch_size]
                q, qm = _pad_states([q_states[qidx[p]] for p, _ in sub])
                if d_kv is None:
                    dst, dm = _pad_states([d_states[j] for _, j in sub])
                    logits = self.model.interact(q, qm, dm, doc_states=dst)
                else:
                    kv, dm = _pad_states([d_kv[j] for _, j in sub])  # [B, L, k, 2, H]
                    heads = self.model.backbone.num_heads
                    layer_kv = [(split_heads(kv[:, :, i, 0], heads), split_heads(kv[:, :, i, 1], heads))
                                for i in range(kv.shape[2])]
                    logits = self.model.interact(q, qm, dm, doc_kv=layer_kv)
                scores[[p for p, _ in sub]] = logits_to_scores(logits).cpu().numpy()
                if progress is not None:
                    progress.update(len(sub))
            return np.zeros(len(doc_batch))

        run_batched(order, self.batch_size, run)
        if progress is not None:
            progress.close()
        return scores

    def _config_key(self):
        return super()._config_key() + (self.query_max_length, self.doc_max_length,
                                         None if self.index is None else os.path.abspath(self.index.path))

    def _repr_args(self):
        args = super()._repr_args()
        return args + ([f"index={self.index!r}"] if self.index is not None else [])
