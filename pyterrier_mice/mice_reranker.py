"""``MiceReranker``: MICE as a PyTerrier re-ranker."""
from __future__ import annotations

import torch

from .attention import merge_heads, split_heads
from .modeling_base import load_tokenizer
from .modeling_mice import MiceModel
from .reranker_base import logits_to_scores
from .split_reranker import SplitReranker, pad_tensors


class MiceReranker(SplitReranker):
    """Re-ranks with a :class:`~pyterrier_mice.MiceModel`.

    Queries and documents are truncated independently to ``query_max_length`` /
    ``doc_max_length`` tokens (default: the backbone's position limit). Each distinct query
    and document in a frame is encoded once. With ``index=DocStateIndex(...)`` document states
    (or, for an index built with ``kv=True``, every interaction layer's keys/values) are read
    from disk instead of being computed.
    """

    schematic = {"label": "MICE", "help_url": None}

    def __init__(self, model: MiceModel, tokenizer, *, query_max_length: int | None = None,
                 doc_max_length: int | None = None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        max_pos = model.encoder.config.max_position_embeddings
        self.query_max_length = query_max_length or max_pos
        self.doc_max_length = doc_max_length or self.max_length or max_pos
        self._attach_index()

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "MiceReranker":
        """Load a saved :class:`MiceModel` (directory or hub id) and its tokenizer.

        Pass ``index=DocStateIndex(path)`` to read document states from a precomputed index.
        """
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls(MiceModel.from_pretrained(name_or_path), tokenizer, model_name=name_or_path, **kwargs)

    # ------------------------------------------------------------------ SplitReranker hooks
    def query_sequences(self, queries):
        return self._singles(queries, self.query_max_length, "queries")

    def doc_sequences(self, docs):
        return self._singles(docs, self.doc_max_length, "documents")

    def encode_queries(self, seqs):
        return self._run_encoder(seqs, self.model.encode)

    encode_docs = encode_queries

    def doc_extras(self, states):
        """Per-document keys/values ``[L_i, k, 2, H]`` of every interaction layer."""
        padded, _ = pad_tensors(states)
        kv = self.model.document_kv(padded)  # k × (keys, values) [B, heads, L, d]
        stacked = torch.stack([torch.stack([merge_heads(k), merge_heads(v)], dim=2) for k, v in kv], dim=2)
        return [stacked[i, :s.shape[0]] for i, s in enumerate(states)]

    def fingerprint_modules(self, with_extras):
        bb = self.model.backbone
        modules = [bb.base.embeddings, *bb.layers]
        if with_extras:
            for il in self.model.interaction:
                modules.append(il.cross)
                if hasattr(il.layer, "attn_norm"):
                    modules.append(il.layer.attn_norm)
        return modules

    def score_batch(self, q, d):
        q, qm = pad_tensors(q)
        mem, dm = pad_tensors(d, dtype=q.dtype)
        if mem.dim() == 3:  # document states [B, L, H]
            logits = self.model.interact(q, qm, dm, doc_states=mem)
        else:  # cached keys/values [B, L, k, 2, H]
            heads = self.model.backbone.num_heads
            kv = [(split_heads(mem[:, :, i, 0], heads), split_heads(mem[:, :, i, 1], heads))
                  for i in range(mem.shape[2])]
            logits = self.model.interact(q, qm, dm, doc_kv=kv)
        return logits_to_scores(logits)

    def _config_key(self):
        return super()._config_key() + (self.query_max_length, self.doc_max_length)
