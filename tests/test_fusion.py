"""Score fusion: weights 0 and 1 rank as its inputs, the weight is chosen on validation queries
only (training never reads the test split), and a trained model carries its weight."""

import json
import os

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

from pyterrier_mice import ScoreFusion
from pyterrier_mice.rerankers.fusion import normalised, weight_curve


class FixedScores(pt.Transformer):
    """A re-ranker whose score of each docno is given."""

    schematic = {"label": "Fixed", "help_url": None}

    def __init__(self, scores: dict):
        self.scores = scores

    def transform(self, inp):
        out = inp.drop(columns=["score", "rank"], errors="ignore")
        out["score"] = [self.scores[(q, d)] for q, d in zip(out["qid"], out["docno"])]
        return pt.model.add_ranks(out)


def _frame(n_queries=4, n_docs=6, seed=0):
    rng = np.random.RandomState(seed)
    rows = [
        {
            "qid": f"q{q}",
            "query": f"query {q}",
            "docno": f"d{d}",
            "text": f"text {d}",
            "score": float(rng.uniform(5, 20)),
        }
        for q in range(n_queries)
        for d in range(n_docs)
    ]
    frame = pd.DataFrame(rows)
    rr = {(r["qid"], r["docno"]): float(rng.normal()) for r in rows}
    return pt.model.add_ranks(frame), rr


def _order(df):
    return {q: list(g.sort_values("rank")["docno"]) for q, g in df.groupby("qid")}


def test_weights_zero_and_one_rank_as_the_first_stage_and_the_reranker():
    frame, scores = _frame()
    reranker = FixedScores(scores)
    assert _order(ScoreFusion(reranker, weight=0.0)(frame)) == _order(frame)
    assert _order(ScoreFusion(reranker, weight=1.0)(frame)) == _order(reranker(frame))
    for how in ("minmax", "zscore"):
        fused = ScoreFusion(reranker, weight=0.3, normalise=how)(frame)
        assert (
            len(fused) == len(frame)
            and fused.groupby("qid")["rank"].apply(sorted).map(list).eq([list(range(6))] * 4).all()
        )
    assert (normalised(pd.Series([3.0, 3.0]), pd.Series(["a", "a"])) == 0).all()  # equal scores: no NaN


def test_fused_scores_do_not_depend_on_the_depth_of_the_first_stage():
    # normalised by the first stage's top 20, a document's fused score is the same in a top-30 and a top-60
    deep, scores = _frame(n_docs=60, seed=3)
    shallow = deep[deep["rank"] < 30]
    for how in ("minmax", "zscore"):
        fusion = ScoreFusion(FixedScores(scores), weight=0.4, normalise=how)
        a, b = fusion(shallow).set_index(["qid", "docno"])["score"], fusion(deep).set_index(["qid", "docno"])["score"]
        assert np.allclose(a, b.loc[a.index], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="depth=1 must be an integer ≥ 2"):
        ScoreFusion(FixedScores(scores), depth=1)


def test_the_weight_is_chosen_on_validation_queries_only():
    # on the validation queries the first stage is right, on the "test" queries the re-ranker is
    frame, _ = _frame(n_queries=6)
    frame["qid"] = ["v" + q if int(q[1:]) < 3 else "t" + q for q in frame["qid"]]
    top = frame.sort_values("score", ascending=False).groupby("qid").head(1)
    bottom = frame.sort_values("score").groupby("qid").head(1)
    rerank = {(q, d): -s for q, d, s in zip(frame["qid"], frame["docno"], frame["score"])}  # reverses BM25
    qrels = pd.concat([top[top["qid"].str.startswith("v")], bottom[bottom["qid"].str.startswith("t")]])
    qrels = qrels[["qid", "docno"]].assign(label=1)
    valid, test = frame[frame["qid"].str.startswith("v")], frame[frame["qid"].str.startswith("t")]
    fusion = ScoreFusion(FixedScores(rerank)).fit(valid, qrels[qrels["qid"].str.startswith("v")])
    assert fusion.weight < 0.5 and fusion.fitted["queries"] == 3
    assert fusion.fitted["value"] == 1.0 and fusion.fitted["reranker_alone"] < 1.0
    # the test queries would have chosen the re-ranker: what was fitted did not look at them
    scored = test.assign(first_score=test["score"], score=-test["score"], first_order=test.groupby("qid").cumcount())
    assert weight_curve(scored, qrels, "nDCG@10")[1.0] == 1.0
    # in a pipeline, fit receives the first stage's results for the queries given (PyTerrier's Estimator)
    first = pt.Transformer.from_df(frame)
    pipeline = first >> ScoreFusion(FixedScores(rerank))
    pipeline.fit(valid[["qid", "query"]].drop_duplicates(), qrels[qrels["qid"].str.startswith("v")])
    assert pipeline[1].weight == fusion.weight


def test_bad_input_is_one_clear_line(tmp_path):
    frame, scores = _frame()
    with pytest.raises(ValueError, match="lacks \\['score'\\].*bm25 % 100 >> pt.text.get_text"):
        ScoreFusion(FixedScores(scores))(frame.drop(columns=["score"]))
    with pytest.raises(ValueError, match="weight=1.5 must be between 0"):
        ScoreFusion(FixedScores(scores), weight=1.5)
    with pytest.raises(ValueError, match="normalise='rank'"):
        ScoreFusion(FixedScores(scores), normalise="rank")
    with pytest.raises(FileNotFoundError, match="fusion.json does not exist.*ScoreFusion\\(reranker\\).fit"):
        ScoreFusion.from_pretrained(str(tmp_path), reranker=FixedScores(scores))


def test_training_saves_the_weight_chosen_on_held_out_queries_never_the_test_split(
    tokenizer, beir_folder, tmp_path, monkeypatch
):
    from conftest import tiny_encoder
    from pyterrier_mice.evaluation.datasets import BeirFolder
    from pyterrier_mice.training import TrainConfig, run
    from pyterrier_mice.training import models as training_models

    # a copy of the folder whose 'train' split is its 'test' qrels, and whose test split must never be read
    import shutil

    folder = tmp_path / "beir"
    shutil.copytree(beir_folder, folder)
    shutil.copy(folder / "qrels" / "test.tsv", folder / "qrels" / "train.tsv")
    real = BeirFolder.get_qrels

    def guarded(self, split="test"):
        assert split != "test", "training read the test split"
        return real(self, split)

    monkeypatch.setattr(BeirFolder, "get_qrels", guarded)
    monkeypatch.setattr(training_models, "load_encoder", lambda *a, **k: tiny_encoder("bert", seed=1))
    monkeypatch.setattr(training_models, "load_tokenizer", lambda *a, **k: tokenizer)
    cfg = TrainConfig.from_dict(
        {
            "output_dir": str(tmp_path / "out"),
            "steps": 3,
            "batch_size": 2,
            "lr": 1e-3,
            "warmup": 0,
            "save_every": 0,
            "log_every": 0,
            "device": "cpu",
            "loss": "infonce",
            "model": {"type": "cross-encoder", "backbone": "tiny"},
            "data": {"kind": "beir", "path": str(folder), "split": "train", "bm25_k": 5, "negatives": 2},
            "eval": {"split": "holdout", "holdout": 0.4, "k": 6, "every": 2, "measure": "nDCG@10"},
        }
    )
    out = run(cfg)
    saved = json.load(open(tmp_path / "out" / "final" / "fusion.json"))
    assert saved["step"] == 3 and saved["queries"] == 2 and 0 <= saved["weight"] <= 1 and saved["k"] == 6
    assert [h["step"] for h in out["history"] if "val_fused" in h] == [0, 2, 3]  # 3, the last, validated for final/
    # the same weight from ScoreFusion.fit on the held-out queries' BM25 run with the final model
    from pyterrier_mice.training.data import bm25_run, holdout_qids

    ds = BeirFolder(str(folder))
    held = holdout_qids(ds, "train", 0.4, cfg.eval_seed)
    topics, qrels = ds.get_topics("train"), ds.get_qrels("train")
    valid = bm25_run(ds, topics[topics["qid"].isin(held)], None, 6)
    fusion = ScoreFusion.from_pretrained(str(tmp_path / "out" / "final"))
    refit = ScoreFusion(fusion.reranker).fit(valid, qrels[qrels["qid"].isin(held)])
    assert refit.weight == fusion.weight == saved["weight"]
    assert refit.fitted["value"] == pytest.approx(saved["value"])
    # the model records the queries its checkpoint and weight were chosen on, and is never evaluated on them
    from pyterrier_mice.cli import main
    from pyterrier_mice.evaluation.experiment import open_dataset, rerank_experiment
    from pyterrier_mice.evaluation.splits import ChosenOnTestQueries, validation_topics

    final = str(tmp_path / "out" / "final")
    chosen_on = validation_topics(final)
    assert set(chosen_on["qid"]) == held and len(chosen_on) == len(held)  # each query once
    if os.path.exists(tmp_path / "out" / "best"):
        assert set(validation_topics(str(tmp_path / "out" / "best"))["qid"]) == held
    argv = ["rerank", final, "--dataset", str(folder), "--split", "train", "--k", "3", "--out", str(tmp_path / "r")]
    assert main(argv) == 2  # one line (the CLI's errors are tested in test_cli)
    monkeypatch.setattr(BeirFolder, "get_qrels", real)
    with pytest.raises(ChosenOnTestQueries, match="checkpoint and fusion weight"):
        rerank_experiment(
            open_dataset(str(folder), "train"), {"CE": (fusion.reranker, ("ce",))}, k=3, work=str(tmp_path)
        )


def test_a_finished_run_removes_its_resume_state_and_is_readable_by_others(tokenizer, tmp_path):
    from training_helpers import _cfg, _groups, _reranker
    from pyterrier_mice.training import Trainer

    old = os.umask(0o027)
    try:
        cfg = _cfg(tmp_path, "cross-encoder")
        out = Trainer(cfg, _reranker(cfg, tokenizer), _groups()).train()
    finally:
        os.umask(old)
    run_dir = tmp_path / "cross-encoder"
    assert not os.path.exists(run_dir / "checkpoint"), "the resumable checkpoint outlived the finished run"
    state = json.load(open(run_dir / "trainer.json"))
    assert state["step"] == 4 and state["history"] == out["history"]
    for name in os.listdir(run_dir / "final"):
        assert os.stat(run_dir / "final" / name).st_mode & 0o777 == 0o640, name
    assert os.stat(run_dir / "final").st_mode & 0o777 == 0o750
    # rerun under the same config: finished, nothing trained, nothing rewritten
    mtime = os.stat(run_dir / "final" / "model.safetensors").st_mtime_ns
    again = Trainer(cfg, _reranker(cfg, tokenizer), _groups()).train()
    assert again["history"] == out["history"] and os.stat(run_dir / "final" / "model.safetensors").st_mtime_ns == mtime


class Reversed(pt.Transformer):
    """A re-ranker from elsewhere that returns its rows in reverse order (scores unchanged)."""

    def __init__(self, inner):
        self.inner = inner

    def transform(self, inp):
        return self.inner(inp).iloc[::-1].reset_index(drop=True)


def test_save_writes_the_current_weight_not_the_fitted_one(tmp_path):
    frame, scores = _frame()
    qrels = frame.groupby("qid").head(1)[["qid", "docno"]].assign(label=1)
    fusion = ScoreFusion(FixedScores(scores)).fit(frame, qrels)
    fusion.weight = 0.9 if fusion.weight != 0.9 else 0.1
    fusion.save(str(tmp_path))
    assert ScoreFusion.from_pretrained(str(tmp_path), reranker=FixedScores(scores)).weight == fusion.weight


def test_normalisation_depends_on_the_first_stage_s_order_only():
    """BM25 ties at the depth's edge: the reference rows follow the first stage's ranking, so a
    re-ranker returning the same scores in another row order fuses to the same scores."""
    frame, scores = _frame(n_docs=30)
    frame["score"] = np.repeat([10.0, 5.0], [10, 20]).tolist() * 4  # 20 tied candidates straddle depth 20
    frame = pt.model.add_ranks(frame)
    a = ScoreFusion(FixedScores(scores), weight=0.5)(frame).set_index(["qid", "docno"])["score"]
    b = ScoreFusion(Reversed(FixedScores(scores)), weight=0.5)(frame).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(b.loc[a.index], a, rtol=0, atol=1e-12)


def test_fusion_meets_non_finite_scores_and_duplicates_in_one_line():
    frame, scores = _frame()
    nan_first = frame.copy()
    nan_first.loc[3, "score"] = np.nan
    with pytest.raises(ValueError, match="the first stage's score is nan for qid='q0', docno='d3'"):
        ScoreFusion(FixedScores(scores), weight=0.5)(nan_first)
    scores_inf = dict(scores)
    scores_inf[("q1", "d2")] = np.inf
    with pytest.raises(ValueError, match="the re-ranker's score is inf for qid='q1', docno='d2'"):
        ScoreFusion(FixedScores(scores_inf), weight=0.5)(frame)

    class Doubled(pt.Transformer):
        def transform(self, inp):
            out = FixedScores(scores)(inp)
            return pd.concat([out, out.head(1)], ignore_index=True)

    with pytest.raises(ValueError, match="the re-ranker's frame: 1 duplicate \\(qid, docno\\) row"):
        ScoreFusion(Doubled(), weight=0.5)(frame)


def test_fit_counts_and_requires_judged_queries():
    frame, scores = _frame()
    qrels = frame[frame["qid"] == "q0"].head(1)[["qid", "docno"]].assign(label=1)
    fusion = ScoreFusion(FixedScores(scores)).fit(frame, qrels)
    assert fusion.fitted["queries"] == 1  # the judged one, not the frame's 4
    other = pd.DataFrame({"qid": ["zz"], "docno": ["d0"], "label": [1]})
    with pytest.raises(ValueError, match="the qrels judge none of the 4 validation queries"):
        ScoreFusion(FixedScores(scores)).fit(frame, other)


@pytest.mark.parametrize(
    "content, said",
    [
        ('{"weight": 0.5', "not readable JSON"),
        ("[0.5]", "holds a list, not an object"),
        ('{"normalise": "minmax"}', "weight=None is not a number from 0 to 1"),
        ('{"weight": "high"}', "weight='high' is not a number"),
        ('{"weight": 0.5, "depth": 1}', "depth=1 is not an integer ≥ 2"),
    ],
)
def test_an_odd_fusion_file_is_one_line_naming_it(content, said, tmp_path):
    (tmp_path / "fusion.json").write_text(content)
    with pytest.raises(ValueError, match=said) as err:
        ScoreFusion.from_pretrained(str(tmp_path), reranker=FixedScores({}))
    assert str(tmp_path / "fusion.json") in str(err.value) and len(str(err.value).splitlines()) == 1


def test_an_unfitted_fusion_says_its_weight_and_a_saved_zero_is_reported(tmp_path):
    frame, scores = _frame()
    with pytest.warns(UserWarning, match="no weight was chosen.*fusing at the default 0.5"):
        ScoreFusion(FixedScores(scores))(frame)
    (tmp_path / "fusion.json").write_text('{"weight": 0.0}')
    with pytest.warns(UserWarning, match="chose weight 0.*ranks as the first stage \\(BM25\\) alone"):
        ScoreFusion.from_pretrained(str(tmp_path), reranker=FixedScores(scores))


def test_fusion_passes_pyterrier_s_inspection():
    """pt.testing.TransformerTestCase (inputs, outputs, schematic) and the attributes round trip."""
    import unittest

    frame, scores = _frame()
    fusion = ScoreFusion(FixedScores(scores), weight=0.3, normalise="zscore", depth=5)
    case = pt.testing.transformer_test_class(lambda: fusion)
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    assert result.wasSuccessful(), result.failures + result.errors
    attrs = {a.name: a.value for a in pt.inspect.transformer_attributes(fusion)}
    assert attrs == {
        "reranker": fusion.reranker,
        "weight": 0.3,
        "normalise": "zscore",
        "depth": 5,
        "measure": "nDCG@10",
        "verbose": False,
    }
    rebuilt = pt.inspect.transformer_apply_attributes(fusion, weight=0.7)
    assert (rebuilt.weight, rebuilt.normalise, rebuilt.depth, rebuilt.reranker) == (0.7, "zscore", 5, fusion.reranker)
    with pytest.raises(pt.validate.InputValidationError):
        fusion(frame.drop(columns=["score"]))
