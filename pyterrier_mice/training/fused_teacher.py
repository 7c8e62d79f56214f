"""The fused teacher (``data.teacher_fusion``): a teacher's scores interpolated with BM25's exactly as
:class:`~pyterrier_mice.ScoreFusion` interpolates them at inference (each normalised per query by the
first stage's top candidates), at the weight that ranks best on the held-out validation queries. The
cosine and BM25 fused rank better than either alone; a student distilled from their fusion learns both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.retrieval import bm25
from ..rerankers.fusion import DEPTH, ScoreFusion, fused_scores
from .data import GroupData
from .teacher import teacher_scores

#: BM25 depth the teacher's candidates are looked up at (a candidate deeper is scored as the last one)
LOOKUP_DEPTH = 1000


def choose_teacher_weight(teacher, validation: tuple[pd.DataFrame, pd.DataFrame], measure: str) -> dict:
    """The weight of BM25 beside the teacher that ranks best on the validation run (``(run, qrels)``:
    BM25's candidates of the held-out queries, with texts), as ``ScoreFusion.fit`` chooses it."""
    run, qrels = validation
    return ScoreFusion(teacher, measure=measure).fit(run, qrels).fitted


def fuse_with_bm25(
    data: GroupData, dataset, topics: pd.DataFrame, teacher, teacher_path: str, cache_dir: str, fusion: dict
) -> GroupData:
    """Replace every group's teacher scores (already attached) by their fusion with BM25's at
    ``fusion["weight"]``: each query's scores normalised by its BM25 top-``depth`` candidates (whose
    teacher scores are computed too), a group's document that BM25 does not retrieve in its top
    :data:`LOOKUP_DEPTH` scored as the last it retrieves."""
    depth = fusion.get("depth", DEPTH)
    run = bm25(dataset, num_results=LOOKUP_DEPTH)(topics[["qid", "query"]])
    run = run.assign(qid=run["qid"].astype(str), docno=run["docno"].astype(str))
    top = run[run["rank"] < depth]
    texts = dataset.texts()
    extra_q = [q for q, d in zip(top["query"], top["docno"])]
    extra_d = [texts[d] for d in top["docno"]]
    top_scores = teacher_scores(teacher, teacher_path, extra_q, extra_d, cache_dir, verbose=False)
    rows = [
        {"qid": q, "docno": d, "score": s, "reference": True} for q, d, s in zip(top["qid"], top["docno"], top_scores)
    ]
    for g, grp in enumerate(data.groups):
        rows += [
            {"qid": grp.qid, "docno": d, "score": s, "reference": False, "group": g, "position": i}
            for i, (d, s) in enumerate(zip(grp.docnos, grp.teacher))
        ]
    frame = pd.DataFrame(rows)
    first = run.set_index(["qid", "docno"])[["score", "rank"]]
    lowest = run.groupby("qid")["score"].min()
    keys = list(zip(frame["qid"], frame["docno"]))
    found = first.reindex(keys)
    frame["first_score"] = found["score"].to_numpy()
    frame["first_order"] = found["rank"].to_numpy()
    missing = frame["first_score"].isna().to_numpy()
    frame.loc[missing, "first_score"] = frame.loc[missing, "qid"].map(lowest).fillna(0.0).to_numpy()
    frame.loc[missing, "first_order"] = np.inf
    # one row per (query, document): a group's documents are among the reference rows or added once
    unique = frame.drop_duplicates(["qid", "docno"]).reset_index(drop=True)
    unique["fused"] = fused_scores(unique, fusion["weight"], fusion.get("normalise", "minmax"), depth).to_numpy()
    fused = unique.set_index(["qid", "docno"])["fused"]
    for grp in data.groups:
        grp.teacher = [float(fused[(grp.qid, d)]) for d in grp.docnos]
    return data
