"""``ScoreFusion``: the first stage's score interpolated with a re-ranker's, each normalised per
query, with the weight chosen on validation queries (``fit``) or read from a trained model."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pyterrier as pt

from ..files import write_json
from .checks import check_finite, refuse_duplicates

#: where a trained model keeps the fusion weight chosen on its validation queries
FUSION_FILE = "fusion.json"
#: the weights ``fit`` tries: 0, 0.05, …, 1
GRID = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
NORMALISATIONS = ("minmax", "zscore")
#: the normalising statistics come from the first stage's top this-many candidates of each query
DEPTH = 20
#: the default weight, used (with a warning) until ``fit`` chooses one or a trained model's is read
DEFAULT_WEIGHT = 0.5


class MissingFirstStageScore(pt.validate.InputValidationError, ValueError):
    """A fusion's input without the first stage's ``score`` column: PyTerrier's validation error
    (``pt.inspect`` reads its modes), printed as one line."""

    def __str__(self):
        return self.args[0]


def reference_rows(frame: pd.DataFrame, depth: int = DEPTH) -> pd.Series:
    """Whether each row of ``frame`` (``qid``, ``first_score``, ``first_order``) is among the ``depth``
    best of its query by the first stage: by its score, ties broken by the first stage's own order
    (never by the order of ``frame``'s rows); a row the first stage did not rank (``first_order``
    infinite) never is."""
    ranked = frame[np.isfinite(frame["first_order"].astype("float64"))]
    order = ranked.sort_values(["qid", "first_score", "first_order"], ascending=[True, False, True], kind="stable")
    top = order.groupby("qid", sort=False).cumcount().lt(depth)
    return top.reindex(frame.index, fill_value=False).astype(bool)


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


def normalised_pair(scored: pd.DataFrame, how: str = "minmax", depth: int = DEPTH) -> tuple[pd.Series, pd.Series]:
    """The first stage's and the re-ranker's scores of ``scored`` (see :func:`with_first_stage`)
    normalised per query with the statistics of the first stage's top ``depth`` candidates, so that a
    document's normalised scores do not depend on how deep the first stage's list goes beyond them
    (fusion chosen at one depth ranks the same at another)."""
    reference = reference_rows(scored, depth)
    return (
        normalised(scored["first_score"], scored["qid"], how, reference),
        normalised(scored["score"], scored["qid"], how, reference),
    )


def fused_scores(scored: pd.DataFrame, weight: float, how: str = "minmax", depth: int = DEPTH) -> pd.Series:
    """``(1 - weight)·first + weight·re-ranker``, each normalised per query (see :func:`normalised_pair`)."""
    a, b = normalised_pair(scored, how, depth)
    return (1.0 - weight) * a + weight * b


def _first_stage_order(first: pd.DataFrame) -> pd.Series:
    """Each row's place in its query's first-stage ranking: its ``rank``, else its row order."""
    if "rank" in first.columns:
        return pd.to_numeric(first["rank"], errors="coerce").fillna(np.inf)
    return first.groupby("qid", sort=False).cumcount().astype("float64")


def with_first_stage(reranked: pd.DataFrame, first: pd.DataFrame) -> pd.DataFrame:
    """``reranked`` with the first stage's score of each row (from ``first``, the first stage's result
    frame of the same candidates) in column ``first_score`` and its place in the first stage's
    ranking in ``first_order``. Both frames' scores must be finite and their candidates distinct."""
    check_finite(first["score"], first, "fusion", "the first stage's score is")
    check_finite(reranked["score"], reranked, "fusion", "the re-ranker's score is")
    refuse_duplicates(first, "fusion: the first stage's frame", "each candidate must appear once")
    refuse_duplicates(reranked, "fusion: the re-ranker's frame", "each candidate must appear once")
    stage = first[["qid", "docno", "score"]].rename(columns={"score": "first_score"})
    merged = reranked.merge(stage.assign(first_order=_first_stage_order(first)), on=["qid", "docno"], how="left")
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
    merged["score"] = fused_scores(merged, weight, normalise, depth)
    merged = merged.drop(columns=["first_score", "first_order"])
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
    Used with neither (nor ``weight=``), it fuses at 0.5 and says so once.
    """

    schematic = {"label": "ScoreFusion", "help_url": None}

    def __init__(
        self,
        reranker: pt.Transformer,
        weight: float | None = None,
        *,
        normalise: str = "minmax",
        depth: int = DEPTH,
        measure="nDCG@10",
        verbose: bool = False,
    ):
        if weight is not None and not (isinstance(weight, (int, float)) and 0.0 <= weight <= 1.0):
            raise ValueError(
                f"ScoreFusion: weight={weight!r} must be between 0 (the first stage alone) and 1 (the re-ranker alone)"
            )
        if normalise not in NORMALISATIONS:
            raise ValueError(f"ScoreFusion: normalise={normalise!r}; expected one of {list(NORMALISATIONS)}")
        if not isinstance(depth, (int, np.integer)) or depth < 2:
            raise ValueError(
                f"ScoreFusion: depth={depth!r} must be an integer ≥ 2 (the candidates whose scores normalise a query's)"
            )
        self.reranker, self.weight, self.normalise, self.depth = reranker, weight, normalise, depth
        self.measure, self.verbose = measure, verbose
        self.fitted: dict | None = None  # what fit chose, and on what

    @classmethod
    def from_pretrained(cls, path: str, reranker: pt.Transformer | None = None, **reranker_kwargs) -> "ScoreFusion":
        """The re-ranker saved at ``path`` (or ``reranker``) with the fusion weight its training chose
        on its validation queries (``path/fusion.json``)."""
        saved = read_fusion_file(os.fspath(path))
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
        if saved["weight"] == 0:
            warnings.warn(
                f"ScoreFusion: {path}'s training chose weight 0 on its validation queries: the model did not help "
                "there, so this fusion ranks as the first stage (BM25) alone",
                stacklevel=2,
            )
        return fusion

    # ------------------------------------------------------------------ transform
    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        self._check_first_stage(inp)
        if self.weight is None:
            self._say_default_weight()
        weight = DEFAULT_WEIGHT if self.weight is None else self.weight
        return fuse_runs(inp, self.reranker(inp), weight, self.normalise, self.depth)

    def _say_default_weight(self) -> None:
        if not getattr(self, "_said_default", False):
            self._said_default = True
            warnings.warn(
                f"ScoreFusion: no weight was chosen (fit it on validation queries, load a trained model's with "
                f"ScoreFusion.from_pretrained, or pass weight=); fusing at the default {DEFAULT_WEIGHT}",
                stacklevel=3,
            )

    def _check_first_stage(self, inp: pd.DataFrame) -> None:
        try:
            pt.validate.result_frame(inp, extra_columns=["score"])
        except pt.validate.InputValidationError as e:
            raise MissingFirstStageScore(
                f"ScoreFusion: the input lacks {sorted({'qid', 'docno', 'score'} - set(inp.columns))} (its columns: "
                f"{list(inp.columns)}); fusion interpolates the first stage's scores, so place it right after a "
                "retriever, e.g. bm25 % 100 >> pt.text.get_text(ds, 'text') >> ScoreFusion(reranker)",
                e.modes,
            ) from None

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
        self.fitted = choose_weight(scored, qrels, self.measure, self.normalise, self.depth)
        self.weight = self.fitted["weight"]
        if self.verbose:
            f = self.fitted
            print(
                f"ScoreFusion: weight {self.weight} ({f['measure']} {f['value']:.4f} on {f['queries']} validation "
                f"queries; re-ranker alone {f['reranker_alone']:.4f}, first stage alone {f['first_stage_alone']:.4f})"
            )
        return self

    def save(self, path: str) -> None:
        """Write the current weight (with what ``fit`` measured, when that is the weight it chose) into
        ``path/fusion.json``."""
        weight = DEFAULT_WEIGHT if self.weight is None else self.weight
        chosen = self.fitted if self.fitted is not None and self.fitted.get("weight") == weight else {}
        write_json(
            os.path.join(path, FUSION_FILE),
            {
                **chosen,
                "weight": weight,
                "normalise": self.normalise,
                "depth": self.depth,
                "measure": str(self.measure),
            },
        )

    def __repr__(self):
        return f"ScoreFusion({self.reranker!r}, weight={self.weight}, normalise={self.normalise!r})"


def read_fusion_file(path: str) -> dict:
    """The fusion settings saved in ``path/fusion.json``, checked (one line naming the file otherwise)."""
    file = os.path.join(path, FUSION_FILE)
    if not os.path.exists(file):
        raise FileNotFoundError(
            f"{file} does not exist: only a model trained with validation queries (pyterrier-mice "
            "train / derive on a BEIR folder) has a fusion weight; choose one with "
            "ScoreFusion(reranker).fit(valid_topics, valid_qrels) instead"
        )
    try:
        with open(file, encoding="utf8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{file} is not readable JSON ({type(e).__name__}: {e}); delete it or train again") from None
    problems = []
    if not isinstance(saved, dict):
        problems.append(f"it holds a {type(saved).__name__}, not an object")
    else:
        weight = saved.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            problems.append(f"weight={weight!r} is not a number from 0 to 1")
        if saved.get("normalise", "minmax") not in NORMALISATIONS:
            problems.append(f"normalise={saved.get('normalise')!r} is not one of {list(NORMALISATIONS)}")
        depth = saved.get("depth", DEPTH)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
            problems.append(f"depth={depth!r} is not an integer ≥ 2")
    if problems:
        raise ValueError(f"{file}: {'; '.join(problems)}; delete it or train again")
    return saved


def choose_weight(scored: pd.DataFrame, qrels: pd.DataFrame, measure, how: str = "minmax", depth: int = DEPTH) -> dict:
    """The weight of :data:`GRID` whose fusion of ``scored``'s first-stage and re-ranker scores (see
    :func:`with_first_stage`) ranks best by ``measure`` on ``qrels`` (ties: the weight nearest 0.5),
    with what was measured and on how many judged queries."""
    judged = set(qrels["qid"].astype(str)) & set(scored["qid"].astype(str))
    if not judged:
        raise ValueError(
            f"fusion: the qrels judge none of the {scored['qid'].nunique()} validation queries (e.g. qid "
            f"{scored['qid'].iloc[0]!r}), so no weight can be chosen on them; pass the qrels of these queries"
        )
    values = weight_curve(scored, qrels, measure, how, depth)
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
        "queries": len(judged),
    }


def weight_curve(
    scored: pd.DataFrame, qrels: pd.DataFrame, measure, how: str = "minmax", depth: int = DEPTH, grid=GRID
) -> dict[float, float]:
    """``measure`` of the fused ranking of ``scored`` (see :func:`with_first_stage`) at each weight of
    ``grid``, averaged over the judged queries."""
    import ir_measures

    measure = ir_measures.parse_measure(measure) if isinstance(measure, str) else measure
    qrels = qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"})
    qrels = qrels.assign(query_id=qrels["query_id"].astype(str), doc_id=qrels["doc_id"].astype(str))
    qrels = qrels[qrels["query_id"].isin(set(scored["qid"].astype(str)))]  # the frame's queries only
    a, b = normalised_pair(scored, how, depth)
    base = pd.DataFrame({"query_id": scored["qid"].astype(str), "doc_id": scored["docno"].astype(str)})
    return {
        float(w): float(ir_measures.calc_aggregate([measure], qrels, base.assign(score=(1 - w) * a + w * b))[measure])
        for w in grid
    }
