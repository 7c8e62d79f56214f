"""Adding a model family is its model file, its re-ranker file and one registration
(``tests/families/``, as ``pt_docs/architecture.rst`` says): the family then trains, saves, loads,
re-ranks and indexes through the package's own paths, the command line included."""

import os
import sys

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "families"))

import dot_reranker  # noqa: E402  (the one registration)
from dot_model import DotModel  # noqa: E402

from training_helpers import _cli_config  # noqa: E402


@pytest.fixture
def dot_config(tokenizer, beir_folder, tmp_path):
    model = {"type": "dot", "backbone": str(tmp_path / "backbone"), "scale": 0.5, "query_max_length": 16}
    return _cli_config(tmp_path, tokenizer, beir_folder, model={**model, "doc_max_length": 32}, save_every=0)


def test_a_family_trains_saves_loads_and_reranks_through_the_cli(dot_config, beir_folder, tmp_path, capsys):
    import pyterrier_mice
    from pyterrier_mice import MiceIndex, load_reranker
    from pyterrier_mice.cli import main

    assert main(["train", dot_config]) == 0
    final = str(tmp_path / "out" / "final")
    rr = load_reranker(final)
    assert type(rr) is dot_reranker.DotReranker and isinstance(rr.model, DotModel)
    assert (rr.model.config.layers, rr.model.config.scale) == (2, 0.5)  # the family's options, as configured
    assert (rr.query_max_length, rr.doc_max_length) == (16, 32)  # the lengths it trained at
    assert pyterrier_mice.DotReranker is dot_reranker.DotReranker  # exported with every family
    run = str(tmp_path / "dot.trec")
    args = ["rerank", final, "--dataset", beir_folder, "--split", "test", "--k", "4", "--out", run]
    assert main(args) == 0, capsys.readouterr().err
    reranked = pd.read_csv(run, sep=" ", names=["qid", "q0", "docno", "rank", "score", "tag"])
    assert reranked.groupby("qid").size().le(4).all() and len(reranked) > 10
    # its documents' states go into an index and score as on the fly
    frame = pd.read_csv(run, sep=" ", names=["qid", "q0", "docno", "rank", "score", "tag"], dtype=str)
    index = MiceIndex(str(tmp_path / "idx")).indexer(rr).index(_corpus(beir_folder))
    from pyterrier_mice.evaluation.experiment import open_dataset

    ds = open_dataset(beir_folder, "test")
    texts = ds.collection.texts()
    frame = frame[["qid", "docno"]].merge(ds.topics, on="qid").assign(text=lambda f: f["docno"].map(texts))
    on_the_fly = rr(frame).set_index(["qid", "docno"])["score"]
    indexed = load_reranker(final, index=index)
    from_index = indexed(frame).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(from_index.loc[on_the_fly.index], on_the_fly, atol=1e-3)  # fp16 states
    assert indexed.last_stats["encoded"] == 0


def test_a_family_s_options_are_checked_by_its_config(dot_config, capsys):
    from pyterrier_mice.cli import main

    assert main(["train", dot_config, "--set", "model.layers=0"]) == 2
    assert "model: layers=0 must be ≥ 1" in capsys.readouterr().err
    assert main(["train", dot_config, "--set", "model.dim=16"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) in 'model': ['dim']" in err and "dot's options: ['layers', 'scale']" in err


def _corpus(folder):
    from pyterrier_mice.evaluation.datasets import BeirFolder

    return BeirFolder(folder).get_corpus_iter()
