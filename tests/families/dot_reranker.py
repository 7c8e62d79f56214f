"""The re-ranker file of the test family, with its one registration."""

from pyterrier_mice.models.registry import register_family
from pyterrier_mice.rerankers.split import SplitReranker, gather_padded, pad_tensors

from dot_model import DotModel


class DotReranker(SplitReranker):
    schematic = {"label": "Dot", "help_url": None}
    model_class = DotModel

    def __init__(self, model: DotModel, tokenizer, *, query_max_length=None, doc_max_length=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        limit = model.encoder.config.max_position_embeddings
        self.query_max_length = self._length("query_max_length", query_max_length, limit)
        self.doc_max_length = self._length("doc_max_length", doc_max_length, limit)
        self._check_lengths(query_max_length=self.query_max_length, doc_max_length=self.doc_max_length)
        self._attach_index()

    def query_sequences(self, queries):
        return self._singles(queries, self.query_max_length, "queries")

    def doc_sequences(self, docs):
        return self._singles(docs, self.doc_max_length, "documents")

    def encode_queries(self, seqs):
        return self._run_encoder(seqs, self.model.encode)

    def encode_docs(self, seqs):  # per-token states: what an index stores
        return self._run_encoder(seqs, self.model.encode)

    def score_batch(self, q, d, q_ids=None, d_ids=None):
        queries, q_mask = pad_tensors(q)
        docs, d_mask = gather_padded(d, queries.dtype)
        return self.model.score(queries, q_mask, docs, d_mask)


register_family("dot", DotModel, DotReranker)
