"""``BiEncoderReranker``: a sentence-embedding model's similarity of query and document as a PyTerrier
re-ranker (zero-shot, and the teacher of the cross-encoder recipe), encoded by sentence-transformers."""

from __future__ import annotations

import contextlib
import hashlib
import os

import numpy as np
import torch

from ..files import atomic_file, locked
from . import profiling
from ..models.bi_encoder import embedded_once, load_sentence_transformer, pairwise_similarity
from .base import Reranker
from .text import tokenize


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as saved:
        return {k: saved[k] for k in saved.files}


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)


class BiEncoderReranker(Reranker):
    """Scores a pair by the model's similarity of its query's and its document's embeddings (the
    cosine for most models, such as all-MiniLM-L6-v2), each distinct text of a frame encoded once by
    sentence-transformers (``encode_query`` / ``encode_document``: the model's prompts, pooling, dense
    layers and normalisation, as that library runs them).

    Queries and documents are cut at ``query_max_length`` and ``doc_max_length`` tokens (default: the
    model's ``max_seq_length``). ``model`` is a ``SentenceTransformer``.
    """

    schematic = {"label": "BiEncoder", "help_url": None}
    length_options = ("query_max_length", "doc_max_length")

    def __init__(
        self,
        model,
        tokenizer=None,
        *,
        query_max_length: int | None = None,
        doc_max_length: int | None = None,
        **kwargs,
    ):
        if not hasattr(model, "encode_query"):
            raise TypeError(
                f"BiEncoderReranker: model is a {type(model).__name__}, not a sentence_transformers.SentenceTransformer"
            )
        super().__init__(model, tokenizer if tokenizer is not None else model.tokenizer, **kwargs)
        limit = model.max_seq_length or model[0].auto_model.config.max_position_embeddings
        self.query_max_length = query_max_length or limit
        self.doc_max_length = doc_max_length or limit
        positions = getattr(getattr(model[0], "auto_model", None), "config", None)
        self._check_lengths(
            max_pos=getattr(positions, "max_position_embeddings", None) or limit,
            query_max_length=self.query_max_length,
            doc_max_length=self.doc_max_length,
        )

    @classmethod
    def load_model(cls, name_or_path: str):
        """The ``SentenceTransformer`` saved at ``name_or_path`` (a folder or hub id)."""
        return load_sentence_transformer(name_or_path)

    @contextlib.contextmanager
    def cached_embeddings(self, path: str | None = None):
        """Within this block each distinct text is embedded once, however many pairs and calls use it
        (what a teacher scoring thousands of pairs over a few hundred documents needs); with ``path``
        (a ``.npz`` file, named by :meth:`cache_key`) the embeddings are read from it first and added
        to it at the end, so that later runs with the same model and lengths (other seeds, recipes,
        the fused teacher) embed only what is new; runs ending at once each add theirs."""
        store: dict[str, np.ndarray] = {}
        if path is not None and os.path.exists(path):
            store.update(_read_npz(path))
        before, self._embeddings = set(store), store
        try:
            yield store
        finally:
            self._embeddings = None
            if path is not None and len(store) > len(before):
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                with locked(path):  # another run may have added its own since this one read the file
                    merged = _read_npz(path) if os.path.exists(path) else {}
                    merged.update({k: v for k, v in store.items() if k not in before})
                    save_npz(path, merged)

    def _embedding_key(self, side: str, text: str) -> str:
        length = self.query_max_length if side == "query" else self.doc_max_length
        return hashlib.sha1(f"{side}\0{length}\0{text}".encode("utf8", "surrogatepass")).hexdigest()

    def embed(self, texts: list[str], side: str) -> torch.Tensor:
        """``[N, D]`` embeddings of ``texts`` as queries (``side="query"``) or documents, as the model's
        ``encode_query`` / ``encode_document`` compute them, each text cut at its side's length (each
        distinct text once inside :meth:`cached_embeddings`)."""
        store = getattr(self, "_embeddings", None)
        if store is None:
            return self._encode(texts, side)
        rows = embedded_once(
            texts,
            lambda t: self._embedding_key(side, t),
            store,
            lambda todo: self._encode(todo, side).float().cpu().numpy(),
        )
        return torch.from_numpy(np.stack(rows)).to(self.device)

    def _encode(self, texts: list[str], side: str) -> torch.Tensor:
        length = self.query_max_length if side == "query" else self.doc_max_length
        what = "queries" if side == "query" else "documents"
        with profiling.section("tokenise"):
            lengths = [len(t) + 2 for t in tokenize(self.tokenizer, texts)]
        self._warn_truncated(sum(n > length for n in lengths), len(lengths), what, length)
        encode = self.model.encode_query if side == "query" else self.model.encode_document
        saved, self.model.max_seq_length = self.model.max_seq_length, length
        try:
            with profiling.section("encode"):
                return encode(
                    list(texts),
                    batch_size=self.batch_size,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
        finally:
            self.model.max_seq_length = saved

    def _score(self, queries, docnos, docs, qidx, didx):
        q, d = self.embed(list(queries), "query"), self.embed(list(docs), "document")
        return pairwise_similarity(self.model, q, d, qidx, didx).cpu().numpy()
