"""``ColBERTReranker``: late-interaction (MaxSim) re-ranking with a :class:`ColBERTModel`.

Re-rankers layer: imports only :mod:`pyterrier_mice.models`, :mod:`pyterrier_mice.index` and re-ranker modules."""

from __future__ import annotations

from ..models.checkpoints import check_model_kind
from ..models.checkpoints import load_tokenizer
from ..models.colbert import ColBERTModel
from .split import SplitReranker, gather_padded, pad_tensors
from .text import tokenize


class ColBERTReranker(SplitReranker):
    """Scores each pair by MaxSim between query and document token embeddings.

    Lengths come from the model's config (``query_length``, ``doc_length``); the input form
    (standard ColBERT or the MICE authors' reference form) too. Document embeddings can be
    precomputed in a :class:`~pyterrier_mice.MiceIndex`.
    """

    schematic = {"label": "ColBERT", "help_url": None}

    def __init__(self, model: ColBERTModel, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self.query_length = model.config.query_length
        self.doc_max_length = model.config.doc_length
        self._attach_index()

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "ColBERTReranker":
        """A saved ColBERT model (folder or hub id) and its tokenizer; ``index=`` a document-state index (or
        its path) to read document states from; the other keyword arguments as :class:`Reranker`'s."""
        check_model_kind(name_or_path, ColBERTModel, cls)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls(ColBERTModel.from_pretrained(name_or_path), tokenizer, model_name=name_or_path, **kwargs)

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
        seqs = self._with_marker(queries, self.query_length, cfg.query_marker_id, "queries")
        if self._standard:  # query augmentation: pad with attended [MASK] tokens
            seqs = [s + [cfg.mask_token_id] * (self.query_length - len(s)) for s in seqs]
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
            length=self.query_length,
            valid=[self.query_length] * len(seqs),
            pad_id=self.query_pad_id,
        )

    def encode_docs(self, seqs):
        return self._run_encoder(seqs, self.model.encode)

    def score_batch(self, q, d):
        q, _ = pad_tensors(q)
        d, dm = gather_padded(d, q.dtype)
        return self.model.maxsim(q, d, dm)

    def _config_key(self):
        return super()._config_key() + (self.query_length, self.doc_max_length)
