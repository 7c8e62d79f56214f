"""Training groups ``(query, positive, negatives, teacher scores)`` from MS MARCO teacher files or
a BEIR folder's qrels with BM25 negatives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..evaluation.retrieval import bm25


@dataclasses.dataclass
class Group:
    query: str
    docs: list[str]  # positive first, then negatives
    teacher: list[float] | None = None  # teacher scores aligned with docs
    qid: str | None = None  # where the group comes from (a BEIR folder's query and documents)
    docnos: list[str] | None = None


class GroupData:
    """In-memory groups read in an order fixed by ``seed`` and the step (so runs resume exactly)."""

    def __init__(self, groups: list[Group], seed: int = 0, shuffle: bool = True):
        if not groups:
            raise ValueError("no training groups: check the training split, qrels and negatives")
        self.groups, self.seed, self.shuffle = groups, seed, shuffle

    def __len__(self):
        return len(self.groups)

    def batch(self, step: int, batch_size: int) -> list[Group]:
        out = []
        for i in range(step * batch_size, (step + 1) * batch_size):
            epoch, j = divmod(i, len(self.groups))
            order = (
                np.random.RandomState(self.seed + epoch).permutation(len(self.groups))
                if self.shuffle
                else np.arange(len(self.groups))
            )
            out.append(self.groups[order[j]])
        return out


def msmarco_teacher_groups(path: str, limit: int | None = None) -> GroupData:
    """Hofstätter's ensemble teacher triples (``pos_score neg_score qid pos_pid neg_pid``) with
    texts from ir_datasets ``msmarco-passage``; read in file order (as the reference does)."""
    import ir_datasets

    ds = ir_datasets.load("msmarco-passage/train")
    queries = {q.query_id: q.text for q in ds.queries_iter()}
    store = ds.docs_store()
    groups = []
    with open(path, encoding="utf8") as f:
        for n, line in enumerate(f):
            if limit is not None and n >= limit:
                break
            ps, ns, qid, pp, npid = line.rstrip("\n").split("\t")
            groups.append(Group(queries[qid], [store.get(pp).text, store.get(npid).text], [float(ps), float(ns)]))
    return GroupData(groups, shuffle=False)


def bm25_run(dataset, topics: pd.DataFrame, work_dir: str | None, k: int) -> pd.DataFrame:
    """BM25 (PISA) top-k with texts for ``topics`` over a :class:`BeirFolder`'s corpus (its index
    under ``work_dir``, None: the shared cache)."""
    import pyterrier as pt

    return (bm25(dataset, work_dir, num_results=k) >> pt.text.get_text(dataset, "text"))(topics)


def holdout_qids(dataset, split: str, fraction: float, seed: int) -> set[str]:
    """A seeded random ``fraction`` of the judged queries of ``split`` (for validation)."""
    qids = sorted(set(dataset.get_qrels(split)["qid"]))
    n = max(1, int(round(fraction * len(qids))))
    return set(np.random.RandomState(seed).choice(qids, size=n, replace=False))


def completed(pool: list[str], size: int, docnos: list[str], rng, excluded=()) -> list[str]:
    """``pool`` completed in place to ``size`` documents with random ones from ``docnos`` (not in
    ``excluded``, no repeats), for when BM25 finds too few."""
    while len(pool) < size:
        extra = docnos[rng.randint(len(docnos))]
        if extra not in excluded and extra not in pool:
            pool.append(extra)
    return pool


def beir_groups(
    dataset, split: str, work_dir: str, *, k: int = 100, negatives: int = 1, seed: int = 0, exclude_qids=frozenset()
) -> GroupData:
    """Groups from a BEIR folder's ``split``: each judged-relevant document of a query with
    ``negatives`` BM25 top-k documents not judged relevant (random documents where BM25 finds too
    few; queries BM25 finds nothing for are skipped). Teacher scores: :func:`attach_teacher_scores`."""
    topics, qrels = dataset.get_topics(split), dataset.get_qrels(split)
    topics = topics[~topics["qid"].isin(exclude_qids)]
    run = bm25_run(dataset, topics, work_dir, k)
    texts = dataset.texts()
    rel = qrels[qrels["label"] > 0].groupby("qid")["docno"].apply(list).to_dict()
    rng = np.random.RandomState(seed)
    all_docnos = sorted(texts)
    groups = []
    for qid, g in run.groupby("qid", sort=True):
        pool = [d for d in g.sort_values("rank")["docno"] if d not in rel.get(qid, [])]
        completed(pool, negatives, all_docnos, rng, excluded=rel.get(qid, []))
        query = g["query"].iloc[0]
        for pos in rel.get(qid, []):
            if pos not in texts:
                continue
            negs = list(rng.choice(pool, size=min(negatives, len(pool)), replace=False))
            groups.append(Group(query, [texts[pos]] + [texts[n] for n in negs], qid=str(qid), docnos=[pos, *negs]))
    return GroupData(groups, seed=seed)


def pseudo_query_groups(
    dataset, work_dir: str, n: int, *, words: int = 8, k: int = 100, size: int = 4, seed: int = 0
) -> list[Group]:
    """``n`` unlabelled groups for distillation on a corpus with few training queries.

    A pseudo-query is a span of consecutive words (uniformly ``words/2``–``3·words/2`` long) cut at
    a random place of a random corpus document. Its group is ``size`` documents drawn from the
    pseudo-query's BM25 top-``k`` without that source document (random documents complete a short
    list). The teacher's scores order them (MarginMSE needs margins, not labels), so the student
    imitates the teacher on many more queries than the judged ones.
    """
    from ..evaluation.retrieval import bm25

    texts = dataset.texts()
    docnos = sorted(texts)
    rng = np.random.RandomState(seed + 7919)  # not the stream that drew the labelled groups' negatives
    sources, queries = [], []
    while len(queries) < n:
        docno = docnos[rng.randint(len(docnos))]
        tokens = texts[docno].split()
        length = rng.randint(max(1, words // 2), words + words // 2 + 1)
        if len(tokens) < max(2, words // 2):
            continue  # too short a document to cut a query from
        start = rng.randint(0, max(1, len(tokens) - length + 1))
        sources.append(docno)
        queries.append(" ".join(tokens[start : start + length]))
    topics = pd.DataFrame({"qid": [f"pseudo-{i}" for i in range(n)], "query": queries})
    run = bm25(dataset, work_dir, num_results=k)(topics)
    found = run.sort_values(["qid", "rank"]).groupby("qid")["docno"].apply(list).to_dict()
    groups = []
    for i, (source, query) in enumerate(zip(sources, queries)):
        pool = completed([d for d in found.get(f"pseudo-{i}", []) if d != source], size, docnos, rng, excluded=[source])
        picked = [pool[j] for j in rng.choice(len(pool), size=size, replace=False)]
        groups.append(Group(query, [texts[d] for d in picked], qid=f"pseudo-{i}", docnos=picked))
    return groups


def attach_teacher_scores(data: GroupData, teacher, teacher_path: str, cache_dir: str) -> GroupData:
    """Every group's teacher scores, from the on-disk cache or computed once (see :mod:`.teacher`)."""
    from .teacher import teacher_scores

    qs = [grp.query for grp in data.groups for _ in grp.docs]
    ds = [d for grp in data.groups for d in grp.docs]
    scores = teacher_scores(teacher, teacher_path, qs, ds, cache_dir)
    i = 0
    for grp in data.groups:
        grp.teacher = [float(s) for s in scores[i : i + len(grp.docs)]]
        i += len(grp.docs)
    return data
