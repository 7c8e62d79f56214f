"""The layered layout keeps what users saved and wrote before it: a MICE checkpoint, a cross-encoder,
a document-state index (with K/V and token ids) and a pickled re-ranker written by the code before
the move load and score as they did then (``tests/data/pre_layout``, from ``make_pre_layout.py``);
every old module path imports the module now in its place; the import contract holds."""

import importlib
import json
import os
import pickle
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from pyterrier_mice import CrossEncoderReranker, MiceIndex, MiceReranker
from pyterrier_mice._legacy import MOVED, MOVED_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRE = os.path.join(ROOT, "tests", "data", "pre_layout")


def _frame():
    return pd.read_json(os.path.join(PRE, "frame.json"), orient="records", dtype={"qid": str, "docno": str})


def _scores(rr, frame):
    res = rr(frame).set_index(["qid", "docno"])["score"]
    return np.array([res.loc[(q, d)] for q, d in zip(frame["qid"], frame["docno"])])


@pytest.fixture(scope="module")
def before():
    with open(os.path.join(PRE, "scores.json")) as f:
        return json.load(f)


def test_checkpoints_saved_before_the_move_score_as_then(before):
    frame = _frame()
    np.testing.assert_allclose(
        _scores(MiceReranker.from_pretrained(os.path.join(PRE, "mice")), frame), before["mice"], atol=1e-6
    )
    np.testing.assert_allclose(
        _scores(CrossEncoderReranker.from_pretrained(os.path.join(PRE, "ce")), frame), before["ce"], atol=1e-6
    )


def test_an_index_built_before_the_move_is_read(before, tmp_path):
    path = shutil.copytree(os.path.join(PRE, "index"), tmp_path / "index")
    index = MiceIndex(str(path)).verify()
    assert index.has_extras and index.has_token_ids
    rr = MiceReranker.from_pretrained(os.path.join(PRE, "mice"), index=index)
    np.testing.assert_allclose(_scores(rr, _frame()), before["mice"], atol=1e-5)
    assert rr.last_stats["from_index"] == 4 and rr.last_stats["encoded"] == 0


def test_a_reranker_pickled_before_the_move_loads(before):
    with open(os.path.join(PRE, "reranker.pkl"), "rb") as f:  # it names pyterrier_mice.mice_reranker, …
        rr = pickle.load(f)
    assert type(rr) is MiceReranker
    np.testing.assert_allclose(_scores(rr, _frame()), before["mice"], atol=1e-6)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_are_the_modules_now(old):
    """An old path is the module now in its place, or (where names moved out of it) a module whose
    every name is that module's object."""
    was, now = importlib.import_module(f"pyterrier_mice.{old}"), importlib.import_module(f"pyterrier_mice.{MOVED[old]}")
    if old not in MOVED_NAMES:
        assert was is now
    for name in [n for n in vars(now) if not n.startswith("__")]:
        assert getattr(was, name) is getattr(now, name)


def test_the_public_api_of_the_package_stays():
    import pyterrier_mice

    for name in [
        "AttentionPolicy",
        "Block",
        "get_policy",
        "plot_policy",
        "POLICY_NAMES",
        "MaskedCrossEncoderConfig",
        "MaskedCrossEncoderModel",
        "MiceConfig",
        "MiceModel",
        "ColBERTConfig",
        "ColBERTModel",
        "ColBERTReranker",
        "PreTTRConfig",
        "PreTTRModel",
        "PreTTRReranker",
        "Reranker",
        "CrossEncoderReranker",
        "MaskedCrossEncoder",
        "SparseCrossEncoderReranker",
        "MiceReranker",
        "MiceIndex",
        "MiceIndex",
        "MiceIndexError",
    ]:
        assert hasattr(pyterrier_mice, name), name
    from pyterrier_mice.evaluation import paper_table, per_query, pool_repetitions, to_markdown  # noqa: F401


def test_layers_import_only_downwards():
    lint = shutil.which("lint-imports") or pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    out = subprocess.run(
        [lint, "--config", os.path.join(ROOT, ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 kept, 0 broken" in out.stdout


def test_every_public_name_before_the_move_imports_from_its_old_path():
    """``tests/data/pre_layout_names.json``: each module's public names, listed from the code before
    the layered layout (commit 71bd702); each still imports from its old path."""
    import json
    import warnings

    with open(os.path.join(os.path.dirname(__file__), "data", "pre_layout_names.json"), encoding="utf8") as f:
        names = json.load(f)
    removed = {
        "pyterrier_mice.policies": {"format_table"},
        "pyterrier_mice.models.policies": {"format_table"},
        "pyterrier_mice.index.checksums": {"file_checksums"},
    }  # dead code, removed (issue 32)
    missing = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for module, public in names.items():
            for name in set(public) - removed.get(module, set()):
                try:
                    exec(f"from {module} import {name}", {})
                except ImportError as e:
                    missing.append(f"{module}.{name}: {e}")
    assert not missing, missing
    assert sum(map(len, names.values())) > 400
