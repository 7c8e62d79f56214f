"""``MiceReranker``: MICE as a PyTerrier re-ranker, on the fly, from a document-state index, or in
the authors' batches for their padding-dependent models; and the MICE family."""

from __future__ import annotations

import numpy as np
import torch

from ..models.attention import merge_heads, split_heads
from ..models.checkpoints import check_model_kind
from ..models.mice import MiceModel
from ..models.mice.authors import find_authors_checkpoint
from ..models.registry import register_family
from .base import logits_to_scores
from .split import SplitReranker, gather_padded, length_mask, memory_length, pad_ids, pad_tensors, padded_buffer
from .text import tokenize


class LayerwiseKV:
    """Per interaction layer, the padded keys/values of a batch of documents (and the exact-match
    head's values, stored third when the model has them), built only when that layer needs them:
    one layer of stored K/V read, padded and cast at a time (in the index's dtype until then), so
    the batch never holds every layer's K/V at once. Outside autograd, every layer is read into the
    same buffer (each layer's K/V is used up before the next is read)."""

    def __init__(self, memories: list, num_layers: int, heads: int, dtype: torch.dtype, pool=None):
        self.memories, self.num_layers, self.heads, self.dtype, self.pool = memories, num_layers, heads, dtype, pool

    def __iter__(self):
        # with autograd on, a layer's K/V may be saved for backward: never overwrite it then
        reuse = not torch.is_grad_enabled()
        buffer = padded_buffer(self.memories, layer=0, pool=self.pool) if reuse else None
        for i in range(self.num_layers):
            kv, _ = gather_padded(self.memories, self.dtype, layer=i, buffer=buffer)  # [B, L, 2|3, H]
            keys, values = split_heads(kv[:, :, 0], self.heads), split_heads(kv[:, :, 1], self.heads)
            yield (keys, values) if kv.shape[2] == 2 else (keys, values, kv[:, :, 2])
            del kv


class MiceReranker(SplitReranker):
    """Re-ranks with a :class:`~pyterrier_mice.MiceModel`.

    Queries and documents are truncated independently to ``query_max_length`` /
    ``doc_max_length`` tokens (default: the lengths the checkpoint was trained at, else the
    backbone's position limit).

    In the padding-invariant ``[CLS]`` modes (``none``, ``mean``, ``attend``) each distinct
    query and document of a frame is encoded once, and with ``index=MiceIndex(...)``
    document states (or, for an index built with ``kv=True``, every interaction layer's
    keys/values) are read from disk instead of being computed.

    In ``reference`` mode a score depends on the padding of its batch, as in the authors'
    implementation. The re-ranker then reproduces their batching: each query's candidates, in
    the frame's row order (rank order for ``bm25 % k``), are scored in consecutive batches of
    ``reference_batch`` rows (the paper's 64), queries and documents each padded to the longest of
    the batch. An index cannot reproduce that and is refused.
    """

    schematic = {"label": "MICE", "help_url": None}
    model_class = MiceModel

    def __init__(
        self,
        model: MiceModel,
        tokenizer,
        *,
        query_max_length: int | None = None,
        doc_max_length: int | None = None,
        reference_batch: int = 64,
        **kwargs,
    ):
        super().__init__(model, tokenizer, **kwargs)
        max_pos = model.encoder.config.max_position_embeddings
        self.query_max_length = self._length("query_max_length", query_max_length, max_pos)
        self.doc_max_length = self._length("doc_max_length", doc_max_length, max_pos)
        self._check_lengths(query_max_length=self.query_max_length, doc_max_length=self.doc_max_length)
        if not isinstance(reference_batch, (int, np.integer)) or reference_batch < 1:
            raise ValueError(f"MiceReranker: reference_batch={reference_batch!r} must be an integer ≥ 1")
        self.reference_batch = reference_batch
        self._attach_index()

    @classmethod
    def load_model(cls, name_or_path: str) -> MiceModel:
        """A saved :class:`MiceModel` (folder or hub id), or one of the authors' checkpoints (converted;
        its tokenizer is the one its definition names). Pass ``index=MiceIndex(path)`` (or a path) to
        :meth:`from_pretrained` to read document states from a precomputed index."""
        folder = find_authors_checkpoint(name_or_path)
        if folder is None:
            check_model_kind(name_or_path, MiceModel, cls)
        return MiceModel.from_pretrained(folder or name_or_path)

    # ------------------------------------------------------------------ SplitReranker hooks
    def query_sequences(self, queries):
        return self._singles(queries, self.query_max_length, "queries")

    def doc_sequences(self, docs):
        if self.model.config.doc_cls:
            return self._singles(docs, self.doc_max_length, "documents")
        toks = tokenize(self.tokenizer, docs)  # the cross-encoder's document segment: d [SEP]
        n = self.doc_max_length - 1
        self._warn_truncated(sum(len(t) > n for t in toks), len(toks), "documents", self.doc_max_length)
        return [[*t[:n], self._inputs.sep] for t in toks]

    def encode_queries(self, seqs):
        return self._run_encoder(seqs, self.model.encode_queries)

    def encode_docs(self, seqs):
        return self._run_encoder(seqs, self.model.encode_documents)

    def doc_extras(self, states):
        """Per-document keys/values ``[L_i, k, 2, H]`` of every interaction layer (``[L_i, k, 3, H]``
        with the exact-match head's values third)."""
        padded, _ = pad_tensors(states)
        kv = self.model.document_kv(padded)  # k × (keys, values[, exact-match values])
        stacked = torch.stack([torch.stack([merge_heads(t[0]), merge_heads(t[1]), *t[2:]], dim=2) for t in kv], dim=2)
        return [stacked[i, : s.shape[0]] for i, s in enumerate(states)]

    def fingerprint_modules(self, with_extras):
        model = self.model
        bb = model.backbone
        modules = [bb.base.embeddings, *bb.layers]
        if with_extras:
            if model.adapter is not None:
                modules.append(model.adapter)
            for il in model.interaction:
                modules.append(il.cross)
                if hasattr(il.layer, "attn_norm"):
                    modules.append(il.layer.attn_norm)
                if il.exact_match is not None:
                    modules.append(il.exact_match)
        return modules

    @property
    def uses_token_ids(self) -> bool:
        return self.model.config.uses_token_ids

    def score_batch(self, q, d, q_ids=None, d_ids=None):
        q, qm = pad_tensors(q)
        # padding ids that never match each other (the exact-match options compare ids)
        ids = (
            {}
            if q_ids is None
            else {"query_ids": pad_ids(q_ids, -1, q.device), "doc_ids": pad_ids(d_ids, -2, q.device)}
        )
        if self.index is not None and self.index.has_extras:  # keys/values [L, k, 2|3, H], one layer at a time
            lengths = [memory_length(m) for m in d]
            dm = length_mask(lengths, max(lengths), q.device)
            kv = LayerwiseKV(d, len(self.model.interaction), self.model.interaction_heads, q.dtype, self.read_buffer)
            logits = self.model.interact(q, qm, dm, doc_kv=kv, **ids)
        else:  # document states [L, H]
            buffer = None if torch.is_grad_enabled() else padded_buffer(d, pool=self.read_buffer)
            mem, dm = gather_padded(d, q.dtype, buffer=buffer)
            logits = self.model.interact(q, qm, dm, doc_states=mem, **ids)
        return logits_to_scores(logits)

    # ------------------------------------------------------------------ reference mode: padded batches
    def _padded_forward(self, q_seqs, d_seqs) -> torch.Tensor:
        """The model's own forward over aligned rows, each side padded to its longest (the
        authors' computation of a batch)."""
        q = self._to_device(self._inputs.batch(q_seqs))
        d = self._to_device(self._inputs.batch(d_seqs))
        return logits_to_scores(
            self.model(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"]).logits
        )

    def forward_pairs(self, queries, docs):
        if self.model.config.padding_invariant:
            return super().forward_pairs(queries, docs)
        return self._padded_forward(self.query_sequences(list(queries)), self.doc_sequences(list(docs)))

    def _score(self, queries, docnos, docs, qidx, didx):
        if self.model.config.padding_invariant:
            return super()._score(queries, docnos, docs, qidx, didx)
        self.last_stats = {"encoded": len(docs)}
        q_seqs, d_seqs = self.query_sequences(list(queries)), self.doc_sequences(list(docs))
        rows_of_query: dict[int, list[int]] = {}
        for p, q in enumerate(qidx):
            rows_of_query.setdefault(int(q), []).append(p)
        batches = [
            rows[s : s + self.reference_batch]
            for rows in rows_of_query.values()
            for s in range(0, len(rows), self.reference_batch)
        ]
        scores = np.empty(len(qidx), dtype=np.float32)
        progress = self._progress(len(qidx), self.schematic["label"])
        for rows in batches:  # never re-batched: the batch is part of the computation
            got = self._padded_forward([q_seqs[qidx[p]] for p in rows], [d_seqs[didx[p]] for p in rows])
            scores[rows] = got.float().cpu().numpy()
            if progress is not None:
                progress.update(len(rows))
        if progress is not None:
            progress.close()
        return scores

    def _config_key(self):
        return super()._config_key() + (() if self.model.config.padding_invariant else (self.reference_batch,))


register_family(
    "mice",
    MiceModel,
    MiceReranker,
    build_hint="build one with MiceModel.from_backbone(path, first_interaction_layer, interaction_layers) "
    "(its head is kept), save it with save_pretrained, and load that (or run pyterrier-mice derive)",
)
