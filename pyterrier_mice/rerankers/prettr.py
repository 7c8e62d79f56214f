"""``PreTTRReranker``: PreTTR-ℓ through its split path, so document states can be precomputed.

Re-rankers layer: imports only :mod:`pyterrier_mice.models` and re-ranker modules."""

from __future__ import annotations

from ..models.checkpoints import check_model_kind
from ..models.checkpoints import load_tokenizer
from ..models.prettr import PreTTRModel
from .base import logits_to_scores
from .split import SplitReranker, materialise
from .text import tokenize


class PreTTRReranker(SplitReranker):
    """Encodes ``[CLS] q [SEP]`` and ``d [SEP]`` apart for ℓ layers, then joins them.

    Needs a model with a fixed ``doc_position_offset`` (document token j at position
    ``offset + j``): queries are truncated to ``offset`` tokens (with [CLS]/[SEP]) and documents
    to ``max_position_embeddings - offset``.
    """

    schematic = {"label": "PreTTR", "help_url": None}

    def __init__(self, model: PreTTRModel, tokenizer, **kwargs):
        offset = model.config.doc_position_offset
        if offset is None:
            raise ValueError(
                "PreTTRReranker needs a model with a fixed config.doc_position_offset "
                "(document states otherwise depend on the query length); use "
                "CrossEncoderReranker for the joint path"
            )
        super().__init__(model, tokenizer, **kwargs)
        self.query_max_length = offset
        self.doc_max_length = model.encoder.config.max_position_embeddings - offset
        self._attach_index()

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "PreTTRReranker":
        """A saved PreTTR model (folder or hub id) and its tokenizer; ``index=`` a document-state index (or
        its path) to read document states from; the other keyword arguments as :class:`Reranker`'s."""
        check_model_kind(name_or_path, PreTTRModel, cls)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls(PreTTRModel.from_pretrained(name_or_path), tokenizer, model_name=name_or_path, **kwargs)

    def query_sequences(self, queries):
        return self._singles(queries, self.query_max_length, "queries")

    def doc_sequences(self, docs):
        toks = tokenize(self.tokenizer, docs)
        n = self.doc_max_length - 1
        self._warn_truncated(sum(len(t) > n for t in toks), len(toks), "documents", self.doc_max_length)
        return [[*t[:n], self._inputs.sep] for t in toks]

    def encode_queries(self, seqs):
        return self._run_encoder(seqs, self.model.encode_queries)

    def encode_docs(self, seqs):
        return self._run_encoder(seqs, self.model.encode_documents)

    def fingerprint_modules(self, with_extras):
        bb = self.model.backbone
        return [bb.base.embeddings, *list(bb.layers)[: self.model.config.split_layer]]

    def score_batch(self, q, d):
        return logits_to_scores(self.model.join(q, materialise(d)))
