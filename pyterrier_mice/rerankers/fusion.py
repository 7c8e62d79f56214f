"""``ScoreFusion``: the first stage's score interpolated with a re-ranker's, each normalised per
query, with the weight chosen on validation queries (``fit``) or read from a trained model.

Re-rankers layer: imports only re-ranker modules."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyterrier as pt

from ..files import write_json

#: where a trained model keeps the fusion weight chosen on its validation queries
FUSION_FILE = "fusion.json"
#: the weights ``fit`` tries: 0, 0.05, …, 1
GRID = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
NORMALISATIONS = ("minmax", "zscore")
#: the normalising statistics come from the first stage's top this-many candidates of each query
DEPTH = 20


def reference_rows(first: pd.Series, qids: pd.Series, depth: int = DEPTH) -> pd.Series:
    """Whether each row is among the ``depth`` best of its query by the first stage's ``first``."""
    return first.groupby(qids, sort=False).rank(ascending=False, method="first") <= depth


def normalised(
    scores: pd.Series, qids: pd.Series, how: str = "minmax", reference: pd.Series | None = None
) -> pd.Series:
    """``scores`` normalised within each query with the statistics of its ``reference`` rows (all
    rows when None): ``minmax`` maps their lowest to 0 and highest to 1, ``zscore`` their mean to 0
    and s.d. to 1; a query whose reference scores are all equal gets 0 everywhere."""
    if how not in NORMALISATIONS:
        raise ValueError(f"normalise={how!r}; expected one of {list(NORMALISATIONS)}")
    groups = (scores if reference is None else scores.where(reference)).groupby(qids, sort=False)
    if how == "minmax":
        low, span = groups.transform("min"), groups.transform("max") - groups.transform("min")
    else:
        low, span = groups.transform("mean"), groups.transform("std", ddof=0)
    return ((scores - low) / span.where(span > 0, np.inf)).astype("float64")


def normalised_pair(
    first: pd.Series, second: pd.Series, qids: pd.Series, how: str = "minmax", depth: int = DEPTH
) -> tuple[pd.Series, pd.Series]:
    """``first`` and ``second`` normalised per query with the statistics of the first stage's top
    ``depth`` candidates, so that a document's normalised scores do not depend on how deep the first
    stage's list goes beyond them (fusion chosen at one depth ranks the same at another)."""
    reference = reference_rows(first, qids, depth)
    return normalised(first, qids, how, reference), normalised(second, qids, how, reference)


def fused_scores(
    first: pd.Series, second: pd.Series, qids: pd.Series, weight: float, how: str = "minmax", depth: int = DEPTH
) -> pd.Series:
    """``(1 - weight)·first + weight·second``, each normalised per query (see :func:`normalised_pair`)."""
    a, b = normalised_pair(first, second, qids, how, depth)
    return (1.0 - weight) * a + weight * b


def with_first_stage(reranked: pd.DataFrame, first: pd.DataFrame) -> pd.DataFrame:
    """``reranked`` with the first stage's score of each row (from ``first``, the first stage's
    result frame of the same candidates) in column ``first_score``."""
    merged = reranked.merge(
        first[["qid", "docno", "score"]].rename(columns={"score": "first_score"}),
        on=["qid", "docno"],
        how="left",
        validate="one_to_one",
    )
    if merged["first_score"].isna().any():
        row = merged[merged["first_score"].isna()].iloc[0]
        raise ValueError(
            f"fusion: the re-ranked frame holds candidates the first stage's does not (e.g. qid="
            f"{row['qid']!r}, docno={row['docno']!r})"
        )
    return merged


def fuse_runs(
    first: pd.DataFrame, reranked: pd.DataFrame, weight: float, normalise: str = "minmax", depth: int = DEPTH
) -> pd.DataFrame:
    """``reranked`` (a re-ranker's result frame) scored by the fusion of its scores with ``first``'s
    (the first stage's results for the same candidates), ranked."""
    merged = with_first_stage(reranked, first)
    merged["score"] = fused_scores(merged.pop("first_score"), merged["score"], merged["qid"], weight, normalise, depth)
    return pt.model.add_ranks(merged).sort_values(["qid", "rank"], kind="stable").reset_index(drop=True)


class ScoreFusion(pt.Estimator):
    """Re-ranks with ``reranker`` and interpolates: ``score = (1 - weight)·norm(first stage) +
    weight·norm(re-ranker)``. Both scores are normalised per query (``normalise``: ``"minmax"`` or
    ``"zscore"``) with the statistics of the first stage's ``depth`` best candidates, so that a weight
    chosen on a top-30 ranks the same on a top-1000. ``weight=1`` ranks as the re-ranker, ``weight=0``
    as the first stage (whose scores are the input frame's ``score`` column).

    With few training queries, a re-ranker often ranks best beside the first stage rather than
    instead of it. Choose the weight on validation queries, never the test split:

    >>> fused = ScoreFusion(ce)
    >>> (bm25 % 100 >> get_text >> fused).fit(valid_topics, valid_qrels)   # chooses fused.weight
    >>> pt.Experiment([bm25 % 100, bm25 % 100 >> get_text >> fused], test_topics, test_qrels, [nDCG @ 10])

    or load the weight that training chose on the run's held-out queries with :meth:`from_pretrained`.
    """

    schematic = {"label": "ScoreFusion", "help_url": None}

    def __init__(
        self,
        reranker: pt.Transformer,
        weight: float = 0.5,
        *,
        normalise: str = "minmax",
        depth: int = DEPTH,
        measure="nDCG@10",
        verbose: bool = False,
    ):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(
                f"ScoreFusion: weight={weight!r} must be between 0 (the first stage alone) and 1 (the re-ranker alone)"
            )
        if normalise not in NORMALISATIONS:
            raise ValueError(f"ScoreFusion: normalise={normalise!r}; expected one of {list(NORMALISATIONS)}")
        if depth < 2:
            raise ValueError(
                f"ScoreFusion: depth={depth!r} must be ≥ 2 (the candidates whose scores normalise a query's)"
            )
        self.reranker, self.weight, self.normalise, self.depth = reranker, float(weight), normalise, depth
        self.measure, self.verbose = measure, verbose
        self.fitted: dict | None = None  # what fit chose, and on what

    @classmethod
    def from_pretrained(cls, path: str, reranker: pt.Transformer | None = None, **reranker_kwargs) -> "ScoreFusion":
        """The re-ranker saved at ``path`` (or ``reranker``) with the fusion weight its training chose
        on its validation queries (``path/fusion.json``)."""
        file = os.path.join(os.fspath(path), FUSION_FILE)
        if not os.path.exists(file):
            raise FileNotFoundError(
                f"{file} does not exist: only a model trained with validation queries (pyterrier-mice "
                "train / derive on a BEIR folder) has a fusion weight; choose one with "
                "ScoreFusion(reranker).fit(valid_topics, valid_qrels) instead"
            )
        with open(file, encoding="utf8") as f:
            saved = json.load(f)
        if reranker is None:
            from .loading import load_reranker

            reranker = load_reranker(os.fspath(path), **reranker_kwargs)
        fusion = cls(
            reranker,
            saved["weight"],
            normalise=saved.get("normalise", "minmax"),
            depth=saved.get("depth", DEPTH),
            measure=saved.get("measure", "nDCG@10"),
        )
        fusion.fitted = saved
        return fusion

    # ------------------------------------------------------------------ transform
    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        self._check_first_stage(inp)
        return fuse_runs(inp, self.reranker(inp), self.weight, self.normalise, self.depth)

    def _check_first_stage(self, inp: pd.DataFrame) -> None:
        if "score" not in inp.columns:
            raise ValueError(
                f"ScoreFusion: the input has no 'score' column (its columns: {list(inp.columns)}); "
                "fusion interpolates the first stage's scores, so place it right after a retriever, "
                "e.g. bm25 % 100 >> pt.text.get_text(ds, 'text') >> ScoreFusion(reranker)"
            )

    # ------------------------------------------------------------------ fit
    def fit(self, topics_or_res_tr, qrels_tr, topics_or_res_va=None, qrels_va=None) -> "ScoreFusion":
        """Choose :attr:`weight` on validation queries: the weight of :data:`GRID` that maximises
        ``measure`` on ``topics_or_res_va``/``qrels_va`` when given, else on ``topics_or_res_tr``/
        ``qrels_tr`` (a first-stage result frame with texts, as a pipeline's ``fit`` passes it). The
        re-ranker scores the frame once. Pass validation queries, never the test split. Among equal
        values the weight nearest 0.5 wins. Returns ``self``."""
        res, qrels = (topics_or_res_va, qrels_va) if topics_or_res_va is not None else (topics_or_res_tr, qrels_tr)
        self._check_first_stage(res)
        scored = with_first_stage(self.reranker(res), res)
        self.fitted = choose_weight(
            scored["first_score"], scored["score"], scored, qrels, self.measure, self.normalise, self.depth
        )
        self.weight = self.fitted["weight"]
        if self.verbose:
            f = self.fitted
            print(
                f"ScoreFusion: weight {self.weight} ({f['measure']} {f['value']:.4f} on {f['queries']} validation "
                f"queries; re-ranker alone {f['reranker_alone']:.4f}, first stage alone {f['first_stage_alone']:.4f})"
            )
        return self

    def save(self, path: str) -> None:
        """Write the weight (and what ``fit`` measured) into ``path/fusion.json``."""
        write_json(
            os.path.join(path, FUSION_FILE),
            self.fitted
            or {"weight": self.weight, "normalise": self.normalise, "depth": self.depth, "measure": str(self.measure)},
        )

    def __repr__(self):
        return f"ScoreFusion({self.reranker!r}, weight={self.weight}, normalise={self.normalise!r})"


def choose_weight(
    first: pd.Series,
    second: pd.Series,
    frame: pd.DataFrame,
    qrels: pd.DataFrame,
    measure,
    how: str = "minmax",
    depth: int = DEPTH,
) -> dict:
    """The weight of :data:`GRID` whose fusion of ``first`` and ``second`` (scores of ``frame``'s rows)
    ranks best by ``measure`` on ``qrels`` (ties: the weight nearest 0.5), with what was measured."""
    values = weight_curve(first, second, frame, qrels, measure, how, depth)
    best = max(values.values())
    weight = min((w for w, v in values.items() if v == best), key=lambda w: (abs(w - 0.5), w))
    return {
        "weight": weight,
        "normalise": how,
        "depth": depth,
        "measure": str(measure),
        "value": best,
        "reranker_alone": values[1.0],
        "first_stage_alone": values[0.0],
        "queries": int(frame["qid"].nunique()),
    }


def weight_curve(
    first: pd.Series,
    second: pd.Series,
    frame: pd.DataFrame,
    qrels: pd.DataFrame,
    measure,
    how: str = "minmax",
    depth: int = DEPTH,
    grid=GRID,
) -> dict[float, float]:
    """``measure`` of the fused ranking of ``frame`` (``qid``, ``docno``) at each weight of ``grid``,
    averaged over the frame's queries."""
    import ir_measures

    measure = ir_measures.parse_measure(measure) if isinstance(measure, str) else measure
    qrels = qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"})
    qrels = qrels.assign(query_id=qrels["query_id"].astype(str), doc_id=qrels["doc_id"].astype(str))
    qrels = qrels[qrels["query_id"].isin(set(frame["qid"].astype(str)))]  # the frame's queries only
    a, b = normalised_pair(first, second, frame["qid"], how, depth)
    base = pd.DataFrame({"query_id": frame["qid"].astype(str), "doc_id": frame["docno"].astype(str)})
    return {
        float(w): float(ir_measures.calc_aggregate([measure], qrels, base.assign(score=(1 - w) * a + w * b))[measure])
        for w in grid
    }
