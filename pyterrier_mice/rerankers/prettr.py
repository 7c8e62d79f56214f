"""``PreTTRReranker``: PreTTR-ℓ through its split path, so document states can be precomputed; and
the PreTTR family (trained and scored jointly by the cross-encoder re-ranker)."""

from __future__ import annotations

from ..models.prettr import PreTTRModel
from ..models.registry import register_family
from .base import logits_to_scores
from .cross_encoder import CrossEncoderReranker
from .split import SplitReranker, materialise
from .text import tokenize


class PreTTRReranker(SplitReranker):
    """Encodes ``[CLS] q [SEP]`` and ``d [SEP]`` apart for ℓ layers, then joins them.

    Needs a model with a fixed ``doc_position_offset`` (document token j at position
    ``offset + j``): queries are cut to ``offset`` tokens (with [CLS]/[SEP]) and documents to
    ``doc_max_length`` (at most ``max_position_embeddings - offset``, the default).
    """

    schematic = {"label": "PreTTR", "help_url": None}
    model_class = PreTTRModel

    def __init__(self, model: PreTTRModel, tokenizer, *, doc_max_length: int | None = None, **kwargs):
        offset = model.config.doc_position_offset
        if offset is None:
            raise ValueError(
                "PreTTRReranker needs a model with a fixed config.doc_position_offset "
                "(document states otherwise depend on the query length); use "
                "CrossEncoderReranker for the joint path"
            )
        super().__init__(model, tokenizer, **kwargs)
        self.query_max_length = offset
        most = model.encoder.config.max_position_embeddings - offset
        self.doc_max_length = self._length("doc_max_length", doc_max_length, most)
        self._check_lengths(max_pos=most, doc_max_length=self.doc_max_length)
        self._attach_index()

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


register_family(
    "prettr",
    PreTTRModel,
    CrossEncoderReranker,
    also=(PreTTRReranker,),
    build_hint="build one with PreTTRModel.from_backbone(path, split_layer, doc_position_offset=K), save it, "
    "and load that",
)
