"""``MiceReranker``: MICE as a PyTerrier re-ranker, encoding each distinct query and each
distinct document of a frame once (not once per pair)."""
from __future__ import annotations

import numpy as np
import torch

from .modeling_base import load_tokenizer
from .modeling_mice import MiceModel
from .reranker_base import Reranker, logits_to_scores, run_batched
from .text import InputBuilder, tokenize


def _pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``[L_i, H]`` tensors into ``[B, L, H]`` plus a 0/1 mask."""
    n = max(s.shape[0] for s in states)
    out = states[0].new_zeros((len(states), n, states[0].shape[-1]))
    mask = torch.zeros((len(states), n), dtype=torch.long, device=states[0].device)
    for i, s in enumerate(states):
        out[i, :s.shape[0]] = s
        mask[i, :s.shape[0]] = 1
    return out, mask


class MiceReranker(Reranker):
    """Re-ranks with a :class:`~pyterrier_mice.MiceModel`.

    Queries and documents are truncated independently to ``query_max_length`` /
    ``doc_max_length`` tokens (default: the backbone's position limit). Each distinct query
    and document in a frame is encoded once; documents are processed ``batch_size`` at a time,
    longest first, and every pair that uses them is scored right after.
    """

    schematic = {"label": "MICE", "help_url": None}

    def __init__(self, model: MiceModel, tokenizer, *, query_max_length: int | None = None,
                 doc_max_length: int | None = None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        max_pos = model.encoder.config.max_position_embeddings
        self.query_max_length = query_max_length or max_pos
        self.doc_max_length = doc_max_length or self.max_length or max_pos
        self._inputs = InputBuilder(tokenizer)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "MiceReranker":
        """Load a saved :class:`MiceModel` (directory or hub id) and its tokenizer."""
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path)
        return cls(MiceModel.from_pretrained(name_or_path), tokenizer, model_name=name_or_path, **kwargs)

    # ------------------------------------------------------------------ encoding
    def _singles(self, texts, max_length, what) -> list[list[int]]:
        """``[CLS] x [SEP]`` ids of each text, truncated to ``max_length`` with a warning."""
        singles = [self._inputs.single(t, max_length) for t in tokenize(self.tokenizer, texts)]
        self._warn_truncated(sum(s[1] for s in singles), len(singles), what, max_length)
        return [s[0] for s in singles]

    def _encode(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """Bottom-layer states ``[L_i, H]`` of each sequence, batched longest first."""
        order = np.argsort([-len(s) for s in seqs], kind="stable")
        states: list[torch.Tensor | None] = [None] * len(seqs)

        def run(idx):
            batch = self._to_device(self._inputs.batch([seqs[i] for i in idx]))
            x = self.model.encode(batch["input_ids"], batch["attention_mask"])
            for j, i in enumerate(idx):
                states[i] = x[j, :len(seqs[i])]
            return np.zeros(len(idx))

        run_batched(order, self.batch_size, run)
        return states

    def document_states(self, docnos: list[str], seqs: list[list[int]]) -> list[torch.Tensor]:
        """States ``[L_i, H]`` of documents after ℓ* layers (index-backed re-rankers override this)."""
        return self._encode(seqs)

    # ------------------------------------------------------------------ scoring
    def _score(self, queries, docnos, docs, qidx, didx):
        q_states = self._encode(self._singles(queries, self.query_max_length, "queries"))
        d_seqs = self._singles(docs, self.doc_max_length, "documents")
        pairs_of_doc: dict[int, list[int]] = {}
        for p, d in enumerate(didx):
            pairs_of_doc.setdefault(int(d), []).append(p)
        order = np.argsort([-len(s) for s in d_seqs], kind="stable")
        scores = np.empty(len(qidx), dtype=np.float32)
        progress = self._progress(len(qidx), "MICE")

        def run(doc_batch):
            d_states = self.document_states([docnos[i] for i in doc_batch], [d_seqs[i] for i in doc_batch])
            pairs = [(p, j) for j, d in enumerate(doc_batch) for p in pairs_of_doc[int(d)]]
            for s in range(0, len(pairs), self.batch_size):
                sub = pairs[s:s + self.batch_size]
                q, qm = _pad_states([q_states[qidx[p]] for p, _ in sub])
                dst, dm = _pad_states([d_states[j] for _, j in sub])
                logits = self.model.interact(q, qm, dm, doc_states=dst)
                scores[[p for p, _ in sub]] = logits_to_scores(logits).cpu().numpy()
                if progress is not None:
                    progress.update(len(sub))
            return np.zeros(len(doc_batch))

        run_batched(order, self.batch_size, run)
        if progress is not None:
            progress.close()
        return scores

    def _config_key(self):
        return super()._config_key() + (self.query_max_length, self.doc_max_length)
