"""Keeping what is chosen on queries (a fusion weight, a best checkpoint) away from the queries it is
evaluated on: which queries a model's choices were made on (``validation.json``, written beside the
model by training), and the one check every evaluation path runs before it scores."""

from __future__ import annotations

import json
import os

import pandas as pd

from ..files import write_json

#: what a trained model's folder records of the queries its checkpoint and fusion weight were chosen on
VALIDATION_FILE = "validation.json"


class ChosenOnTestQueries(ValueError):
    """Evaluating a weight or checkpoint on (some of) the queries it was chosen on."""


def query_keys(topics: pd.DataFrame) -> set[str]:
    """What identifies a query whatever collection its qid comes from: its text, whitespace and case aside."""
    return {" ".join(str(q).lower().split()) for q in topics["query"]}


def check_disjoint(chosen_on: pd.DataFrame, evaluated: pd.DataFrame, what: str) -> None:
    """Refuse (one line) when a query of ``chosen_on`` (the queries ``what`` was chosen on) is among
    ``evaluated`` (the queries it is about to be evaluated on), by its text."""
    shared = query_keys(chosen_on) & query_keys(evaluated)
    if shared:
        example = sorted(shared)[0]
        raise ChosenOnTestQueries(
            f"{what} was chosen on {len(shared)} of the queries it would be evaluated on (e.g. {example!r}): a "
            "result measured on them says nothing of other queries; evaluate on queries it never saw (another "
            "split or collection), or choose it on other queries"
        )


def record_validation(folder: str, dataset: str, split: str, topics: pd.DataFrame) -> None:
    """Write ``folder/validation.json``: the collection, split and queries (qid and text) that a model's
    checkpoint and fusion weight were chosen on (each query once, whatever rows ``topics`` has per query)."""
    topics = topics.drop_duplicates(["qid", "query"])
    write_json(
        os.path.join(folder, VALIDATION_FILE),
        {
            "dataset": os.path.abspath(dataset) if os.path.isdir(dataset) else dataset,
            "split": split,
            "queries": [{"qid": str(q), "query": str(t)} for q, t in zip(topics["qid"], topics["query"])],
        },
    )


def validation_topics(folder: str) -> pd.DataFrame | None:
    """The queries a trained model's choices were made on (``qid``, ``query``), or None when its folder
    records none (a model not trained here, or trained without validation)."""
    path = os.path.join(os.fspath(folder), VALIDATION_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf8") as f:
            saved = json.load(f)
        return pd.DataFrame(saved["queries"], columns=["qid", "query"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not readable ({type(e).__name__}: {e}); delete it or train again") from None


def check_model_not_validated_on(folder: str, evaluated: pd.DataFrame, name: str | None = None) -> None:
    """Refuse to evaluate the model in ``folder`` on queries its checkpoint or fusion weight was chosen on."""
    chosen_on = validation_topics(folder)
    if chosen_on is not None:
        check_disjoint(chosen_on, evaluated, f"{name or folder} (its checkpoint and fusion weight)")
