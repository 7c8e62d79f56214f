"""What the index needs from a document encoder (a split re-ranker: MICE, ColBERT, split PreTTR),
declared as a protocol; the re-rankers implement it, the index layer never imports them."""

from __future__ import annotations

import contextlib
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class DocumentEncoder(Protocol):
    """The members an index build and an index lookup read."""

    model: torch.nn.Module  # its ``config`` and weights are fingerprinted
    tokenizer: object  # fingerprinted: an index refuses another tokenizer
    model_name: str | None  # recorded in the manifest
    batch_size: int  # documents per forward pass while building
    text_field: str  # the column a build reads by default
    doc_max_length: int  # documents are cut there; an index refuses another length
    uses_token_ids: bool  # MICE's exact-match options read the documents' token ids

    @property
    def not_indexable(self) -> str | None:
        """Why stored states cannot reproduce this encoder's scores, or None."""

    def doc_sequences(self, docs: list[str]) -> list[list[int]]:
        """Token ids of each document, as the encoder reads it."""

    def encode_docs(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """Per-document states ``[L_i, ...]`` (what the index stores)."""

    def doc_extras(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Query-independent extras of the states (MICE: each interaction layer's K/V)."""

    def fingerprint_modules(self, with_extras: bool) -> list[torch.nn.Module]:
        """The modules whose weights the stored states (and extras) depend on."""

    def collect_truncation(self) -> contextlib.AbstractContextManager:
        """A block within which truncation is reported once, at its end."""


#: the members :class:`DocumentEncoder` declares (named in the error for an object that lacks some)
DOCUMENT_ENCODER_MEMBERS = (
    *DocumentEncoder.__annotations__,
    *(n for n in vars(DocumentEncoder) if not n.startswith("_")),
)
