"""Training from a config: :func:`run` builds the model, the data (BM25 groups, teacher scores) and
the validation run, then trains."""

from __future__ import annotations

import os

from ..evaluation.datasets import BeirFolder
from .config import BACKBONE, ConfigError, TrainConfig
from .data import (
    attach_teacher_scores,
    beir_groups,
    bm25_run,
    holdout_qids,
    msmarco_teacher_groups,
    pseudo_query_groups,
)
from ..rerankers.loading import load_reranker
from .models import build_reranker
from .trainer import Trainer


def run(cfg: TrainConfig, *, overwrite: bool = False, resume_anyway: bool = False) -> dict:
    """Build the model, the data and the validation run from ``cfg``, then train.

    A run already in ``cfg.output_dir`` resumes if its config is the same, is refused with the
    difference otherwise (``resume_anyway``: continue it under the new config; ``overwrite``:
    start again); all of this is checked before any data is prepared.
    """
    from .sizing import resolve_auto
    from .trainer import check_run_config, clear_output_dir, seed_everything

    cfg.check_data()
    for line in resolve_auto(cfg):  # the sizes left to the collection ('auto'), chosen and said
        print(f"sized to {cfg.data.path}: {line}", flush=True)
    if overwrite:
        clear_output_dir(cfg.output_dir)
    check_run_config(cfg, resume_anyway, write=False)
    seed_everything(cfg.seed)  # a head (or layer) the backbone lacks is initialised from the run's seed
    reranker = build_reranker(cfg.model, batch_size=cfg.eval.batch_size, device=cfg.device)
    work = None  # BM25 indexes: the shared cache (retrieval.index_cache_dir), one per corpus for every run
    if cfg.data.kind == "msmarco-teacher":
        data = msmarco_teacher_groups(cfg.data.path, cfg.data.limit)
    elif cfg.data.kind == "beir":
        ds = BeirFolder(cfg.data.path)
        held = (
            holdout_qids(ds, cfg.data.split, cfg.eval.holdout, cfg.eval_seed) if cfg.eval.split == "holdout" else set()
        )
        judged = set(ds.get_qrels(cfg.data.split)["qid"])
        if held and not judged - held:
            raise ConfigError(
                f"eval.split=holdout with eval.holdout={cfg.eval.holdout} holds out all {len(judged)} judged "
                f"quer{'y' if len(judged) == 1 else 'ies'} of data.split {cfg.data.split!r} (at least one query is "
                "held out), leaving none to train on: train on a split with more judged queries, or validate on "
                "another split (eval.split: dev) or not at all (eval.every: 0)"
            )
        data = beir_groups(
            ds, cfg.data.split, work, k=cfg.data.bm25_k, negatives=cfg.data.negatives, seed=cfg.seed, exclude_qids=held
        )
        if cfg.data.pseudo_queries:
            words = cfg.data.pseudo_query_words or max(
                2, round(ds.get_topics(cfg.data.split)["query"].str.split().str.len().mean())
            )
            data.groups += pseudo_query_groups(
                ds,
                work,
                cfg.data.pseudo_queries,
                words=words,
                k=cfg.data.bm25_k,
                size=1 + cfg.data.negatives,
                seed=cfg.seed,
            )
        validation = validation_run(cfg, ds, held)
        if cfg.data.teacher:
            path = cfg.teacher_path
            lengths = teacher_lengths(cfg, path)
            named = "the starting model (model.backbone)" if cfg.data.teacher == BACKBONE else path
            print(
                f"teacher {named} scores at {', '.join(f'{k} {v}' for k, v in lengths.items()) or 'its own lengths'}",
                flush=True,
            )
            teacher = load_reranker(path, batch_size=cfg.eval.batch_size, device=cfg.device, **lengths)
            cache = cfg.data.teacher_cache or os.path.join(cfg.output_dir, "teacher")
            attach_teacher_scores(data, teacher, path, cache)
            if cfg.data.teacher_fusion:
                fuse_teacher(cfg, data, ds, teacher, path, cache, validation)
            for grp in data.groups:  # a pseudo-query's positive: the teacher's best candidate
                if grp.qid is not None and grp.qid.startswith("pseudo-"):
                    order = sorted(range(len(grp.docs)), key=lambda i: -grp.teacher[i])
                    grp.docs, grp.docnos = [grp.docs[i] for i in order], [grp.docnos[i] for i in order]
                    grp.teacher = [grp.teacher[i] for i in order]
    else:
        raise ValueError(f"data.kind={cfg.data.kind!r}; expected 'beir' or 'msmarco-teacher'")
    if cfg.data.kind != "beir":
        validation = validation_run(cfg, None, set())
    out_of_domain = None
    if cfg.eval.ood_path:
        ood = BeirFolder(cfg.eval.ood_path)
        topics, qrels = measured_queries(ood, cfg.eval.ood_split, cfg.eval.max_queries, cfg.eval_seed)
        out_of_domain = (bm25_run(ood, topics, None, cfg.eval.k), qrels)
    return Trainer(cfg, reranker, data, validation, out_of_domain).train(resume_anyway=resume_anyway)


def validation_run(cfg: TrainConfig, ds, held: set):
    """``(run, qrels)``: BM25's candidates (with texts) of the validation queries, or None."""
    eval_path = cfg.eval.path or (cfg.data.path if cfg.data.kind == "beir" else None)
    if cfg.eval.split == "holdout":
        if cfg.data.kind != "beir":
            raise ValueError("eval.split 'holdout' needs data.kind 'beir'")
        topics, qrels = measured_queries(ds, cfg.data.split, cfg.eval.max_queries, cfg.eval_seed, among=held)
        return bm25_run(ds, topics, None, cfg.eval.k), qrels
    if eval_path and cfg.eval.every:
        eval_ds = BeirFolder(eval_path)
        topics, qrels = measured_queries(eval_ds, cfg.eval.split, cfg.eval.max_queries, cfg.eval_seed)
        return bm25_run(eval_ds, topics, None, cfg.eval.k), qrels
    return None


def fuse_teacher(cfg: TrainConfig, data, ds, teacher, path: str, cache: str, validation) -> None:
    """``data.teacher_fusion``: the teacher's scores fused with BM25's at the weight chosen on the
    validation queries (see :mod:`.fused_teacher`), said in one line and kept in ``teacher_fusion.json``."""
    import pandas as pd

    from ..files import write_json
    from .fused_teacher import choose_teacher_weight, fuse_with_bm25

    if validation is None:
        raise ConfigError(
            "data.teacher_fusion chooses BM25's weight beside the teacher on validation queries: set eval.split "
            "(e.g. holdout) and eval.every"
        )
    fusion = choose_teacher_weight(teacher, validation, cfg.eval.measure)
    print(
        f"teacher fused with BM25 at weight {fusion['weight']} ({fusion['measure']} on {fusion['queries']} "
        f"validation queries: fused {fusion['value']:.4f}, teacher alone {fusion['reranker_alone']:.4f}, BM25 "
        f"alone {fusion['first_stage_alone']:.4f})",
        flush=True,
    )
    topics = pd.DataFrame([(g.qid, g.query) for g in data.groups], columns=["qid", "query"]).drop_duplicates("qid")
    fuse_with_bm25(data, ds, topics, teacher, path, cache, fusion)
    os.makedirs(cfg.output_dir, exist_ok=True)
    write_json(os.path.join(cfg.output_dir, "teacher_fusion.json"), fusion)


def teacher_lengths(cfg: TrainConfig, teacher_path: str) -> dict:
    """The teacher scores the texts the student sees: a cross-encoder teacher's pair length is
    ``data.teacher_max_length``, else the student's (its pair length, or its query + document
    lengths), never longer than the length the teacher was trained at (run past it, a trained
    cross-encoder ranks worse, and the student learns that); a split teacher takes the student's
    query/document lengths; a bi-encoder its own."""
    from ..models.checkpoints import readable_length
    from ..rerankers.bi_encoder import BiEncoderReranker
    from ..rerankers.loading import reranker_class_of

    m = cfg.model
    kind = reranker_class_of(teacher_path)
    if kind is BiEncoderReranker:
        return {}  # a bi-encoder reads each text alone, at its own length
    if "max_length" in kind.length_options:  # a joint teacher (a cross-encoder)
        if cfg.data.teacher_max_length:
            return {"max_length": cfg.data.teacher_max_length}
        if "max_length" in m.family().reranker.length_options:
            length = m.max_length
        else:
            q, d = m.query_max_length, m.doc_max_length
            length = q + d if q and d else None
        return {"max_length": min(length, readable_length(teacher_path))} if length else {}
    return {k: v for k in kind.length_options if (v := getattr(m, k, None))}


def sample_queries(topics, n: int | None, seed: int):
    """At most ``n`` of ``topics`` (a seeded sample, in their original order)."""
    if n is None or len(topics) <= n:
        return topics
    return topics.sample(n=n, random_state=seed).sort_index()


def measured_queries(ds, split: str, n: int | None, seed: int, among: set | None = None):
    """``(topics, qrels)``: a seeded sample of at most ``n`` judged queries of ``ds``'s ``split``
    (those in ``among`` only, if given), and the judgements of exactly those queries: a measure
    averages over the queries its qrels judge, so judgements of queries left out of the sample
    would count each as a zero."""
    topics, qrels = ds.get_topics(split), ds.get_qrels(split)
    topics = topics[topics["qid"].isin(set(qrels["qid"]) if among is None else among & set(qrels["qid"]))]
    topics = sample_queries(topics, n, seed)
    return topics, qrels[qrels["qid"].isin(set(topics["qid"]))]
