"""``BiEncoderReranker``: a sentence-embedding model's cosine similarity as a PyTerrier re-ranker
(zero-shot, and the teacher of the cross-encoder recipe).

Re-rankers layer: imports only :mod:`pyterrier_mice.models` and re-ranker modules."""

from __future__ import annotations

import torch

from ..models.bi_encoder import BiEncoderModel
from ..models.checkpoints import load_tokenizer
from .split import SplitReranker


class BiEncoderReranker(SplitReranker):
    """Scores a pair by the dot product of its query's and its document's vectors (the cosine for
    a normalising model such as all-MiniLM-L6-v2), each distinct text encoded once.

    Texts are truncated to ``max_length`` tokens (default: the model's ``max_seq_length``, else
    its position limit). Scores lie in [-1, 1] for a normalising model.
    """

    schematic = {"label": "BiEncoder", "help_url": None}

    def __init__(self, model: BiEncoderModel, tokenizer, **kwargs):
        if kwargs.get("index") is not None:
            raise ValueError(
                "BiEncoderReranker: index= is for MICE, ColBERT and PreTTR document states; a bi-encoder's "
                "document vectors are one per document (use pyterrier_dr for a dense index)"
            )
        super().__init__(model, tokenizer, **kwargs)
        if self.max_length is None:
            self.max_length = model.max_length or model.config.max_position_embeddings
        self._check_lengths(max_length=self.max_length)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "BiEncoderReranker":
        """A sentence-transformers folder or hub id (e.g. ``sentence-transformers/all-MiniLM-L6-v2``)."""
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls(BiEncoderModel.from_pretrained(name_or_path), tokenizer, model_name=name_or_path, **kwargs)

    def query_sequences(self, queries):
        return self._singles(queries, self.max_length, "queries")

    def doc_sequences(self, docs):
        return self._singles(docs, self.max_length, "documents")

    def _vectors(self, seqs):
        return self._run_encoder(seqs, lambda ids, mask: self.model.encode(ids, mask)[:, None], valid=[1] * len(seqs))

    def encode_queries(self, seqs):
        return self._vectors(seqs)

    def encode_docs(self, seqs):
        return self._vectors(seqs)

    def score_batch(self, q, d, q_ids=None, d_ids=None):
        return (torch.cat(q) * torch.cat(d).to(q[0].dtype)).sum(-1)
