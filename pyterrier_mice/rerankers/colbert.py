"""``ColBERTReranker``: late-interaction (MaxSim) re-ranking with a :class:`ColBERTModel`, and the
ColBERT family."""

from __future__ import annotations

from ..models.colbert import ColBERTModel
from ..models.registry import register_family
from .split import SplitReranker, gather_padded, pad_tensors
from .text import tokenize


class ColBERTReranker(SplitReranker):
    """Scores each pair by MaxSim between query and document token embeddings.

    Queries are cut (and, in the standard form, padded with ``[MASK]``) to ``query_max_length``
    tokens and documents cut to ``doc_max_length`` (default: the model config's); the input form
    (standard ColBERT or the MICE authors' reference form) is the model's. Document embeddings can be
    precomputed in a :class:`~pyterrier_mice.MiceIndex`.
    """

    schematic = {"label": "ColBERT", "help_url": None}
    model_class = ColBERTModel

    def __init__(
        self,
        model: ColBERTModel,
        tokenizer,
        *,
        query_max_length: int | None = None,
        doc_max_length: int | None = None,
        **kwargs,
    ):
        super().__init__(model, tokenizer, **kwargs)
        limit = model.encoder.config.max_position_embeddings  # a config's default never reads past it
        self.query_max_length = self._length(
            "query_max_length", query_max_length, min(model.config.query_max_length, limit)
        )
        self.doc_max_length = self._length("doc_max_length", doc_max_length, min(model.config.doc_max_length, limit))
        self._check_lengths(query_max_length=self.query_max_length, doc_max_length=self.doc_max_length)
        self._attach_index()

    @property
    def _standard(self) -> bool:
        return self.model.config.input_form == "standard"

    def _with_marker(self, texts, length, marker_id, what):
        """``[CLS] ([Q]|[D]) x [SEP]`` (standard form) or ``[CLS] x [SEP]`` (reference form)."""
        if not self._standard:
            return self._singles(texts, length, what)
        cls_, sep = self._inputs.cls, self._inputs.sep
        toks = tokenize(self.tokenizer, texts)
        self._warn_truncated(sum(len(t) > length - 3 for t in toks), len(toks), what, length)
        return [[cls_, marker_id, *t[: length - 3], sep] for t in toks]

    def query_sequences(self, queries):
        cfg = self.model.config
        seqs = self._with_marker(queries, self.query_max_length, cfg.query_marker_id, "queries")
        if self._standard:  # query augmentation: pad with attended [MASK] tokens
            seqs = [s + [cfg.mask_token_id] * (self.query_max_length - len(s)) for s in seqs]
        return seqs

    def doc_sequences(self, docs):
        return self._with_marker(docs, self.doc_max_length, self.model.config.doc_marker_id, "documents")

    @property
    def query_pad_id(self) -> int:
        """The id queries are padded with: ``[MASK]`` in both forms (attended in the standard form,
        masked out as keys in the reference form, as PyLate does)."""
        mask_id = self.model.config.mask_token_id
        return self.tokenizer.mask_token_id if mask_id is None else mask_id

    def encode_queries(self, seqs):
        # every query position is scored, the [MASK] padding included
        return self._run_encoder(
            seqs,
            self.model.encode,
            length=self.query_max_length,
            valid=[self.query_max_length] * len(seqs),
            pad_id=self.query_pad_id,
        )

    def encode_docs(self, seqs):
        return self._run_encoder(seqs, self.model.encode)

    def score_batch(self, q, d):
        q, _ = pad_tensors(q)
        d, dm = gather_padded(d, q.dtype)
        return self.model.maxsim(q, d, dm)


register_family(
    "colbert",
    ColBERTModel,
    ColBERTReranker,
    build_hint="build one with ColBERTModel.from_backbone(path) and train it",
)
