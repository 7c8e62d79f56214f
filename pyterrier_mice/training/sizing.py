"""Sizing a recipe to the collection it is given: text lengths that cover most of its documents,
and the number of steps a budget of tokens affords (the config's ``auto`` values)."""

from __future__ import annotations

import math
from itertools import islice

import numpy as np

from .config import AUTO, ConfigError, TrainConfig

#: the share of the (sampled) documents that must fit whole
COVERAGE = 0.95
#: at most this many documents of a folder are read to size lengths
SAMPLE = 5000
#: lengths are rounded up to a multiple of this
ROUND = 32
#: ``steps: auto`` trains at least this many steps, and at most this many passes over the groups
MIN_STEPS, MAX_EPOCHS = 50, 4
#: ``eval.every: auto`` validates at most this many times after step 0
VALIDATIONS = 4
#: ``eval.every: auto`` spends at most this share of a run on validation (a training step costs about
#: three forward passes of its pairs: forward and backward)
VALIDATION_SHARE = 0.25


def covering_length(lengths: np.ndarray, limit: int, coverage: float = COVERAGE) -> int:
    """The shortest multiple of :data:`ROUND` that ``coverage`` of ``lengths`` fit in, at most ``limit``."""
    return min(int(math.ceil(np.quantile(lengths, coverage) / ROUND) * ROUND), limit)


def token_lengths(tokenizer, texts: list[str], limit: int) -> np.ndarray:
    """Tokens of each text without special tokens (counted up to ``limit + 1``)."""
    return np.array(
        [
            len(ids)
            for ids in tokenizer(texts, add_special_tokens=False, truncation=True, max_length=limit + 1)["input_ids"]
        ]
    )


def document_lengths(tokenizer, folder: str, limit: int) -> np.ndarray:
    """Tokens of the first :data:`SAMPLE` documents of a BEIR folder (the ``text`` the re-rankers read)."""
    from ..evaluation.datasets import BeirFolder

    texts = [d["text"] for d in islice(BeirFolder(folder).get_corpus_iter(), SAMPLE)]
    if not texts:
        raise ValueError(f"{folder}/corpus.jsonl holds no documents")
    return token_lengths(tokenizer, texts, limit)


def doc_length(tokenizer, folder: str, limit: int, reader: str = "the model") -> tuple[int, str]:
    """A document length (``[CLS] d [SEP]``) covering 95% of the folder's documents, at most ``limit``
    (what ``reader`` reads well), and why."""
    lengths = document_lengths(tokenizer, folder, limit) + 2
    length = covering_length(lengths, limit)
    reason = (
        f"{COVERAGE:.0%} of the documents fit"
        if covering_length(lengths, 10**9) <= limit
        else f"the longest {reader} reads well; {np.mean(lengths <= limit):.0%} of the documents fit"
    )
    return length, reason


def pair_length(tokenizer, folder: str, split: str, limit: int) -> tuple[int, float, str]:
    """A pair length (``[CLS] q [SEP] d [SEP]``) that 95% of the folder's documents fit with a median
    training query, at most ``limit``; the mean length of such pairs once cut; and why."""
    from ..evaluation.datasets import BeirFolder

    queries = list(BeirFolder(folder).get_topics(split)["query"])
    query = int(np.median(token_lengths(tokenizer, queries, limit))) if queries else 0
    lengths = document_lengths(tokenizer, folder, limit) + query + 3
    length = covering_length(lengths, limit)
    reason = (
        f"{COVERAGE:.0%} of the documents fit beside a median query of {query} tokens"
        if covering_length(lengths, 10**9) <= limit
        else f"the longest allowed (model.length_limit, or what the model reads well); {np.mean(lengths <= limit):.0%} "
        "of the documents fit"
    )
    return length, float(np.minimum(lengths, length).mean()), reason


def affordable_steps(budget_tokens: int, tokens_per_step: float, groups: int, batch_size: int) -> int:
    """The steps ``budget_tokens`` afford, at least :data:`MIN_STEPS`, and no more than
    :data:`MAX_EPOCHS` passes over ``groups`` (unless that is fewer than :data:`MIN_STEPS`)."""
    most = max(MIN_STEPS, math.ceil(MAX_EPOCHS * groups / batch_size))
    return int(min(most, max(MIN_STEPS, budget_tokens // tokens_per_step)))


def training_groups(cfg: TrainConfig) -> int:
    """How many labelled groups a BEIR run trains on: its split's (query, relevant document) pairs,
    the held-out validation queries' aside."""
    from ..evaluation.datasets import BeirFolder
    from .data import holdout_qids

    ds = BeirFolder(cfg.data.path)
    qrels = ds.get_qrels(cfg.data.split)
    held = holdout_qids(ds, cfg.data.split, cfg.eval.holdout, cfg.eval_seed) if cfg.eval.split == "holdout" else set()
    return int(((qrels["label"] > 0) & ~qrels["qid"].isin(held)).sum())


def resolve_auto(cfg: TrainConfig) -> list[str]:
    """Replace the ``auto`` values of ``cfg`` by sizes chosen for its collection (a BEIR folder), and
    say what was chosen and why, one line each:

    - ``model.max_length`` (cross-encoder): a pair length that 95% of the documents fit beside a
      median query, at most ``model.length_limit`` and what the backbone reads well (its position
      limit, or the length a checkpoint of this package was trained at);
    - ``model.doc_max_length`` (MICE): a document length that 95% of the documents fit, as bounded;
    - ``steps``: as many as ``budget_tokens`` pair tokens afford (batch × documents per group × the
      mean pair length once cut), at least :data:`MIN_STEPS`, at most :data:`MAX_EPOCHS` passes
      over the training groups;
    - ``warmup``: a tenth of the steps;
    - ``eval.every``: up to :data:`VALIDATIONS` validations after step 0, as many as keep validation
      within :data:`VALIDATION_SHARE` of the run (a short run validates once, at its end, where the
      fusion weight is chosen, and not at step 0); with ``steps: auto``, the steps are rounded up to a
      multiple of the validations, so that the last is at the last step.
    """
    auto = cfg.auto_fields()
    if not auto:
        return []
    if cfg.data.kind != "beir":
        raise ConfigError(
            f"{', '.join(auto)}: 'auto' sizes a recipe to a BEIR folder (data.kind: beir); set "
            f"{'them' if len(auto) > 1 else 'it'} to a number for data.kind={cfg.data.kind!r}"
        )
    from ..models.checkpoints import load_tokenizer, readable_length

    m, said = cfg.model, []
    tokenizer = load_tokenizer(m.backbone)
    limit = min(readable_length(m.backbone), m.length_limit or 10**9)
    mean_length = None
    if m.max_length == AUTO:
        m.max_length, mean_length, why = pair_length(tokenizer, cfg.data.path, cfg.data.split, limit)
        said.append(f"model.max_length={m.max_length} ({why})")
    if m.doc_max_length == AUTO:
        m.doc_max_length, why = doc_length(tokenizer, cfg.data.path, limit)
        said.append(f"model.doc_max_length={m.doc_max_length} ({why})")
    if cfg.steps == AUTO:
        if mean_length is None:
            if "max_length" in m.family().reranker.length_options and isinstance(m.max_length, int):
                _, mean_length, _ = pair_length(tokenizer, cfg.data.path, cfg.data.split, m.max_length)
            else:
                lengths = document_lengths(tokenizer, cfg.data.path, limit) + 2
                mean_length = float(np.minimum(lengths, m.doc_max_length or limit).mean()) + (m.query_max_length or 0)
        per_step = cfg.batch_size * (1 + cfg.data.negatives) * mean_length
        groups = training_groups(cfg)
        cfg.steps = affordable_steps(cfg.budget_tokens, per_step, groups, cfg.batch_size)
        if cfg.eval.every == AUTO:  # validations evenly spaced, the last at the last step
            after = max(1, validation_passes(cfg) - 1)
            cfg.steps = math.ceil(cfg.steps / after) * after
        said.append(
            f"steps={cfg.steps} ({cfg.budget_tokens:,} pair tokens of budget at about {per_step:,.0f} a step; "
            f"{cfg.steps * cfg.batch_size / max(groups, 1):.1f} passes over {groups} training groups)"
        )
    if cfg.warmup == AUTO:
        cfg.warmup = cfg.steps // 10
        said.append(f"warmup={cfg.warmup} (a tenth of the steps)")
    if cfg.eval.every == AUTO:
        passes = validation_passes(cfg)
        cfg.eval.every = max(1, math.ceil(cfg.steps / max(1, passes - 1)))
        cfg.eval.at_start = cfg.eval.at_start and passes > 1
        said.append(
            f"eval.every={cfg.eval.every} ("
            + (
                f"{passes - 1} validation(s) after step 0"
                if passes > 1
                else "one validation, at the end: more would cost over a quarter of this short run"
            )
            + ")"
        )
    return said


def validation_passes(cfg: TrainConfig) -> int:
    """How many validation passes (step 0 included) a run affords: at most :data:`VALIDATIONS` + 1, as
    many as keep them within :data:`VALIDATION_SHARE` of its compute, at least one (the last step's)."""
    pairs = validation_queries(cfg) * cfg.eval.k
    training = 3 * cfg.steps * cfg.batch_size * (1 + cfg.data.negatives)  # forward and backward
    affordable = int(VALIDATION_SHARE / (1 - VALIDATION_SHARE) * training // max(1, pairs))
    return max(1, min(VALIDATIONS + 1, affordable))


def validation_queries(cfg: TrainConfig) -> int:
    """How many queries a validation pass re-ranks."""
    from ..evaluation.datasets import BeirFolder
    from .data import holdout_qids

    if cfg.eval.split == "holdout":
        n = len(holdout_qids(BeirFolder(cfg.data.path), cfg.data.split, cfg.eval.holdout, cfg.eval_seed))
    else:
        n = len(BeirFolder(cfg.eval.path or cfg.data.path).get_topics(cfg.eval.split))
    return min(n, cfg.eval.max_queries or n)
