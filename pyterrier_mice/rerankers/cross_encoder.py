"""``CrossEncoderReranker``: a (masked) cross-encoder as a PyTerrier re-ranker, and the
cross-encoder family."""

from __future__ import annotations

import numpy as np
import torch
from . import profiling
from ..models.checkpoints import MAX_PAIR_LENGTH, describe, model_type_of
from ..models.masked import MaskedCrossEncoderModel
from ..models.policies import get_policy
from ..models.registry import MODEL_CLASSES, family_of_model_type, register_family
from .base import Reranker, logits_to_scores, run_batched
from .text import InputBuilder, tokenize


#: ``forward_pairs`` runs its pairs in chunks of at most this many padded tokens (on a GPU, 8× more)
CHUNK_TOKENS = 2048


class CrossEncoderReranker(Reranker):
    """Scores ``[CLS] query [SEP] text [SEP]`` with a BERT/ModernBERT cross-encoder under an
    attention policy (``'full'``, ``'mask0'``…``'mask3-4'``, ``'sparse_ce'``, ``'prettr-4'`` or
    an :class:`~pyterrier_mice.AttentionPolicy`).

    Pairs are truncated ``longest_first`` to ``max_length`` tokens (default: the length the model
    was trained at, else its position limit, at most 1024) with a warning, batched by token length,
    and scored under ``torch.inference_mode``. Scores are raw logits (float32).
    """

    schematic = {"label": "CrossEncoder", "help_url": None}
    model_class = MaskedCrossEncoderModel
    length_options = ("max_length",)

    def __init__(
        self, model: MaskedCrossEncoderModel, tokenizer, *, policy=None, max_length: int | None = None, **kwargs
    ):
        super().__init__(model, tokenizer, **kwargs)
        if policy is not None:
            self.model.set_policy(policy)
        self.policy = self.model.policy
        self.max_length = self._length(
            "max_length", max_length, min(model.encoder.config.max_position_embeddings, MAX_PAIR_LENGTH)
        )
        self._check_lengths(max_length=self.max_length)
        self._inputs = InputBuilder(tokenizer)

    @classmethod
    def from_pretrained(cls, name_or_path: str, policy=None, *, tokenizer=None, **kwargs):
        """Load a saved masked cross-encoder, or wrap any HF BERT/ModernBERT checkpoint.

        ``policy`` overrides a saved policy; for plain HF checkpoints it defaults to ``'full'``.
        """
        return super().from_pretrained(name_or_path, tokenizer=tokenizer, policy=policy, **kwargs)

    @classmethod
    def load_model(cls, name_or_path: str):
        """A saved cross-encoder of this package (masked or PreTTR), or any HF BERT/ModernBERT
        cross-encoder wrapped under the full policy; a base encoder without a trained head is refused."""
        kind = model_type_of(name_or_path)
        saved = MODEL_CLASSES.get(kind)
        if saved is not None:
            if not issubclass(saved, MaskedCrossEncoderModel):
                family = family_of_model_type(kind)
                load = family.load_with() if family is not None else "its own re-ranker"
                raise ValueError(
                    f"{cls.__name__}: {name_or_path!r} holds {describe(kind)}, not a cross-encoder; load it with {load}"
                )
            return saved.from_pretrained(name_or_path)
        return MaskedCrossEncoderModel.from_backbone(name_or_path, "full", require_head=True)

    def _forward(self, pairs) -> torch.Tensor:
        """Scores of built ``(ids, types, truncated)`` pairs in one batch."""
        use_types = self.model.backbone.model_type == "bert"
        batch = self._inputs.batch([p[0] for p in pairs], [p[1] for p in pairs] if use_types else None)
        return logits_to_scores(self.model(**self._to_device(batch)).logits)

    def forward_pairs(self, queries, docs):
        """Differentiable scores of aligned pairs: sorted by length and run in chunks of at most
        :data:`CHUNK_TOKENS` padded tokens (a batch padded to its longest pair wastes most of its
        compute on collections of uneven lengths), returned in the order given."""
        q_tok, d_tok = tokenize(self.tokenizer, queries), tokenize(self.tokenizer, docs)
        pairs = [self._inputs.pair(q, d, self.max_length) for q, d in zip(q_tok, d_tok)]
        order = np.argsort([-len(p[0]) for p in pairs], kind="stable")
        budget = CHUNK_TOKENS * (8 if self.device.type == "cuda" else 1)
        chunks, start = [], 0
        while start < len(order):
            size = max(1, budget // len(pairs[order[start]][0]))  # the chunk's longest pair comes first
            chunks.append(self._forward([pairs[i] for i in order[start : start + size]]))
            start += size
        scores = torch.cat(chunks)
        return scores[torch.as_tensor(np.argsort(order, kind="stable"), device=scores.device)]

    def _score(self, queries, docnos, docs, qidx, didx):
        with profiling.section("tokenise"):
            q_tok, d_tok = tokenize(self.tokenizer, queries), tokenize(self.tokenizer, docs)
            pairs = [self._inputs.pair(q_tok[q], d_tok[d], self.max_length) for q, d in zip(qidx, didx)]
        self._warn_truncated(sum(p[2] for p in pairs), len(pairs), "query-document pairs", self.max_length)
        order = np.argsort([-len(p[0]) for p in pairs], kind="stable")

        def score(idx):
            with profiling.section("encode"):
                return self._forward([pairs[i] for i in idx]).cpu().numpy()

        progress = self._progress(len(pairs), "CrossEncoder")
        sorted_scores = run_batched(order, self.batch_size, score, progress)
        if progress is not None:
            progress.close()
        scores = np.empty(len(pairs), dtype=np.float32)
        scores[order] = sorted_scores
        return scores

    def _config_key(self):
        return super()._config_key() + (repr(self.policy.to_dict()),)

    def _repr_args(self):
        args = super()._repr_args()
        return args[:1] + [f"policy={self.policy.name!r}"] + args[1:]


class SparseCrossEncoderReranker(CrossEncoderReranker):
    """The Sparse CE baseline (Schlatt et al., 2024): {Q, [SEP1]} never read {[CLS], D, [SEP2]}."""

    schematic = {"label": "SparseCE", "help_url": None}

    def __init__(self, model, tokenizer, *, policy="sparse_ce", **kwargs):
        if get_policy(policy).name != "sparse_ce":
            raise ValueError(
                f"SparseCrossEncoderReranker's policy is always 'sparse_ce', got {get_policy(policy).name!r}"
            )
        super().__init__(model, tokenizer, policy="sparse_ce", **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str, policy="sparse_ce", **kwargs):
        return super().from_pretrained(name_or_path, policy, **kwargs)


register_family(
    "cross-encoder",
    MaskedCrossEncoderModel,
    CrossEncoderReranker,
    also=(SparseCrossEncoderReranker,),
)
