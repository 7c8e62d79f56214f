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
