"""Training: one step per model type and loss; kill-and-resume equals an uninterrupted run; validation, losses, data."""

import json
import os

import pytest
import torch
import yaml

from pyterrier_mice.evaluation.datasets import BeirFolder
from pyterrier_mice import load_reranker
from pyterrier_mice.training import (
    ModelConfig,
    TrainConfig,
    Trainer,
    beir_groups,
    build_reranker,
    get_loss,
)

from conftest import tiny_encoder

from training_helpers import _cfg, _cli_config, _groups, _reranker


@pytest.mark.parametrize("model_type", ["cross-encoder", "mice", "colbert", "prettr"])
@pytest.mark.parametrize("loss", ["margin_mse", "kl_div", "bce", "infonce"])
def test_one_step_per_model_type(model_type, loss, tokenizer, tmp_path):
    cfg = _cfg(tmp_path, model_type, steps=1, loss=loss, warmup=0)
    rr = _reranker(cfg, tokenizer)
    before = {k: v.clone() for k, v in rr.model.state_dict().items()}
    out = Trainer(cfg, rr, _groups()).train()
    assert out["step"] == 1 and torch.isfinite(torch.tensor(out["history"][-1]["loss"]))
    changed = [k for k, v in rr.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "no parameter was updated"
    reloaded = load_reranker(os.path.join(cfg.output_dir, "final"))
    assert type(reloaded) is type(rr)


def test_kill_and_resume_gives_the_same_weights(tokenizer, tmp_path):
    straight = _cfg(tmp_path / "a", "mice")
    Trainer(straight, _reranker(straight, tokenizer), _groups()).train()
    resumed = _cfg(tmp_path / "b", "mice")
    Trainer(resumed, _reranker(resumed, tokenizer), _groups()).train(stop_after=2)  # "killed" after step 2
    assert not os.path.exists(os.path.join(resumed.output_dir, "final"))
    fresh = _reranker(resumed, tokenizer)  # a new process: new model, state from the checkpoint
    out = Trainer(resumed, fresh, _groups()).train()
    assert out["step"] == 4
    a = load_reranker(os.path.join(straight.output_dir, "final")).model.state_dict()
    b = load_reranker(os.path.join(resumed.output_dir, "final")).model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_validation_keeps_best_and_beir_groups(tokenizer, beir_folder, tmp_path):
    ds = BeirFolder(beir_folder)
    data = beir_groups(ds, "test", str(tmp_path), k=10, negatives=2, seed=0)
    assert len(data) == 10 and all(len(g.docs) == 3 for g in data.groups)
    from pyterrier_mice.training import bm25_run

    run = bm25_run(ds, ds.get_topics("test"), str(tmp_path), 5)
    cfg = _cfg(tmp_path, "cross-encoder", loss="infonce", eval={"every": 2, "measure": "nDCG@10"})
    out = Trainer(cfg, _reranker(cfg, tokenizer), data, (run, ds.get_qrels("test"))).train()
    vals = [h["val"] for h in out["history"] if "val" in h]
    assert len(vals) == 3 and out["best"]["nDCG@10"] == max(vals)
    # best/ only where it is neither the starting model (step 0) nor final/ (the last step)
    assert os.path.exists(os.path.join(cfg.output_dir, "best", "config.json")) == (0 < out["best"]["step"] < 4)


def test_checkpoints_record_their_lengths(tokenizer, beir_folder, tmp_path):
    from pyterrier_mice.cli import main

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    assert main(["train", path, "--set", "model.query_max_length=12", "--set", "model.doc_max_length=40"]) == 0
    rr = load_reranker(str(tmp_path / "out" / "final"))
    assert (rr.query_max_length, rr.doc_max_length) == (12, 40)
    assert load_reranker(str(tmp_path / "out" / "final"), doc_max_length=64).doc_max_length == 64


def test_best_from_step_zero_is_reported_loudly(tokenizer, beir_folder, tmp_path, capsys):
    ds = BeirFolder(beir_folder)
    data = beir_groups(ds, "test", str(tmp_path), k=10, negatives=2, seed=0)
    from pyterrier_mice.training import bm25_run

    run = bm25_run(ds, ds.get_topics("test"), str(tmp_path), 5)
    cfg = _cfg(tmp_path, "cross-encoder", loss="infonce", lr=0.0, eval={"every": 2, "measure": "nDCG@10"})
    said_why = "never improved on the starting model.*final/ .* holds the trained model"
    with pytest.warns(UserWarning, match=said_why) as said:
        out = Trainer(cfg, _reranker(cfg, tokenizer), data, (run, ds.get_qrels("test"))).train()
    assert [w.filename for w in said if "never improved" in str(w.message)] == [__file__]  # train()'s caller
    assert out["best"]["step"] == 0 and not os.path.exists(os.path.join(cfg.output_dir, "best"))
    printed = capsys.readouterr().out
    assert "WARNING: validation never improved on the starting model" in printed
    assert "step 0: validation nDCG@10 = " in printed and "random" not in printed  # its head was trained


def test_a_random_head_is_said_only_where_the_head_was_random(tokenizer, beir_folder, tmp_path, capsys):
    from transformers import AutoModel

    ds = BeirFolder(beir_folder)
    data = beir_groups(ds, "test", str(tmp_path), k=10, negatives=2, seed=0)
    from pyterrier_mice.training import bm25_run

    base = tmp_path / "base"
    AutoModel.from_config(tiny_encoder("bert").config).save_pretrained(base)  # no classification head
    tokenizer.save_pretrained(base)
    run = bm25_run(ds, ds.get_topics("test"), str(tmp_path), 5)
    cfg = _cfg(tmp_path, "cross-encoder", loss="infonce", lr=0.0, eval={"every": 2, "measure": "nDCG@10"})
    cfg.model.backbone = str(base)
    with pytest.warns(UserWarning, match="never improved on the starting model \\(its head random\\)"):
        Trainer(cfg, _reranker(cfg, tokenizer), data, (run, ds.get_qrels("test"))).train()


def test_validation_queries_do_not_move_with_the_training_seed(beir_folder, tmp_path):
    """``eval.seed`` pins the held-out queries, so runs with different training seeds (and the
    teacher they distil from) validate on the same queries; unset, the training seed decides."""
    from pyterrier_mice.training import holdout_qids

    ds = BeirFolder(beir_folder)

    def held(**kw):
        cfg = TrainConfig.from_dict({"eval": {"split": "holdout", "holdout": 0.4, **kw.pop("eval", {})}, **kw})
        return holdout_qids(ds, "test", cfg.eval.holdout, cfg.eval_seed)

    assert held(seed=1, eval={"seed": 12}) == held(seed=2, eval={"seed": 12}) == held(seed=12)
    assert len({frozenset(held(seed=s)) for s in range(6)}) > 1


def test_pseudo_query_groups(beir_folder, tmp_path):
    """Pseudo-queries are word spans of corpus documents; their groups are BM25 candidates
    without the source document, the same for the same seed."""
    from pyterrier_mice.training import pseudo_query_groups

    ds = BeirFolder(beir_folder)
    texts = ds.texts()
    groups = pseudo_query_groups(ds, str(tmp_path), 9, words=4, k=5, size=3, seed=0)
    assert len(groups) == 9 and all(len(g.docs) == len(set(g.docs)) == 3 and g.teacher is None for g in groups)
    for g in groups:
        sources = [t for t in texts.values() if g.query in " ".join(t.split())]
        assert sources and 2 <= len(g.query.split()) <= 6, g.query
        assert not any(d in sources for d in g.docs) or len(sources) > 1
    again = pseudo_query_groups(ds, str(tmp_path), 9, words=4, k=5, size=3, seed=0)
    assert [(g.query, g.docs) for g in again] == [(g.query, g.docs) for g in groups]
    with pytest.raises(ValueError, match="pseudo_queries=5 needs distillation.*loss='infonce'"):
        TrainConfig.from_dict({"loss": "infonce", "data": {"pseudo_queries": 5}})


def test_kl_div_loss_is_the_listwise_kl_from_the_teacher():
    """kl_div = mean over groups of Σ p_teacher · log(p_teacher / p_student); a student equal to its
    teacher up to a per-group shift loses nothing (the softmax ignores it), and it needs a teacher."""
    torch.manual_seed(0)
    s, t = torch.randn(3, 4), torch.randn(3, 4)
    p, q = t.softmax(1), s.softmax(1)
    expected = (p * (p.log() - q.log())).sum(1).mean()
    torch.testing.assert_close(get_loss("kl_div")(s, t), expected, rtol=1e-6, atol=1e-7)
    assert get_loss("kl_div")(t + torch.randn(3, 1), t).abs() < 1e-6
    with pytest.raises(ValueError, match="needs teacher scores"):
        get_loss("kl_div")(s, None)


def test_a_run_killed_in_teacher_scoring_or_validation_resumes_to_the_same_weights(tokenizer, beir_folder, tmp_path):
    """SIGKILL while the teacher's scores are computed, and while a validation pass runs: the rerun
    resumes (the scores where they stopped, training from its last checkpoint) and its final
    checkpoint is bitwise the one of a run never killed (CPU)."""
    import subprocess
    import sys

    from pyterrier_mice import MaskedCrossEncoderModel

    teacher = tmp_path / "teacher"
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", seed=4), tokenizer).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    backbone = tmp_path / "bb"
    tiny_encoder("bert", num_hidden_layers=4, seed=5).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([here, os.path.dirname(here), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
    )

    def train(out, where="none", n=0):
        cfg = {
            "output_dir": str(tmp_path / out),
            "steps": 4,
            "batch_size": 2,
            "warmup": 0,
            "lr": 1e-3,
            "loss": "margin_mse",
            "device": "cpu",
            "log_every": 0,
            "save_every": 1,
            "model": {"type": "mice", "backbone": str(backbone), "first_interaction_layer": 2, "interaction_layers": 2},
            "data": {
                "kind": "beir",
                "path": beir_folder,
                "split": "test",
                "bm25_k": 6,
                "negatives": 2,
                "teacher": str(teacher),
            },
            "eval": {"split": "holdout", "holdout": 0.4, "k": 5, "every": 2},
        }
        path = tmp_path / f"{out}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return subprocess.run(
            [sys.executable, os.path.join(here, "kill_worker.py"), where, str(n), "train", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    def weights(out):
        return (tmp_path / out / "final" / "model.safetensors").read_bytes()

    assert train("reference").returncode == 0
    for out, where in (("killed_teacher", "teacher"), ("killed_validation", "validation")):
        killed = train(out, where, 2)
        assert killed.returncode == -9, killed.stderr[-2000:]
        assert not (tmp_path / out / "final").exists()
        if where == "teacher":
            assert any(f.endswith(".partial") for f in os.listdir(tmp_path / out / "teacher"))
        else:
            assert json.load(open(tmp_path / out / "checkpoint" / "trainer.json"))["step"] == 1
        again = train(out)
        assert again.returncode == 0, again.stderr[-2000:]
        assert weights(out) == weights("reference"), f"{where}: the resumed run's final weights differ"


@pytest.mark.parametrize("model_type", ["cross-encoder", "mice"])
def test_one_command_trains_the_same_model_twice_from_a_base_encoder(model_type, tokenizer, beir_folder, tmp_path):
    """A base encoder has no classification head: the head is initialised anew, and it must be
    initialised from the run's seed. It was not (the README's main job gave two cross-encoders,
    28.6 and 29.4 on Cranfield test, from one command): two runs of one config end bitwise equal,
    and another seed differs."""
    from transformers import AutoModel

    from pyterrier_mice import load_reranker
    from pyterrier_mice.training import TrainConfig, run

    base = tmp_path / "base"
    AutoModel.from_config(tiny_encoder("bert").config).save_pretrained(base)  # no head
    tokenizer.save_pretrained(base)
    model = {"type": model_type, "backbone": str(base)}
    if model_type == "mice":
        model.update(first_interaction_layer=2, interaction_layers=2)

    def train(name, seed=12):
        cfg = TrainConfig.from_dict(
            {
                "output_dir": str(tmp_path / name),
                "steps": 2,
                "batch_size": 2,
                "warmup": 0,
                "lr": 1e-3,
                "loss": "infonce",
                "device": "cpu",
                "log_every": 0,
                "save_every": 0,
                "seed": seed,
                "model": model,
                "eval": {"every": 0},
                "data": {"kind": "beir", "path": beir_folder, "split": "test", "bm25_k": 5},
            }
        )
        torch.manual_seed(len(name))  # whatever the process did before
        run(cfg)
        return load_reranker(str(tmp_path / name / "final")).model.state_dict()

    a, b, c = train("a"), train("bb"), train("ccc", seed=13)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_runs_in_one_process_may_change_precision(tokenizer, tmp_path):
    """A notebook trains in bf16, then in fp32: accelerate's process-wide state must not refuse the second."""
    for i, precision in enumerate(["bf16", "no", "bf16"]):
        cfg = _cfg(tmp_path / str(i), "cross-encoder", steps=1, warmup=0, precision=precision)
        out = Trainer(cfg, _reranker(cfg, tokenizer), _groups()).train()
        assert out["step"] == 1


def test_cross_encoder_training_pairs_in_length_chunks_equal_one_padded_batch(tokenizer, monkeypatch):
    """Training scores pairs sorted by length in chunks (a batch padded to its longest pair wastes most
    of its compute on uneven collections): the scores and the gradients are those of one batch."""
    import pyterrier_mice.rerankers.cross_encoder as ce

    cfg = ModelConfig(type="cross-encoder", max_length=64)
    rr = build_reranker(cfg, tokenizer=tokenizer, encoder=tiny_encoder("bert", seed=5), device="cpu")
    rr.model.eval()  # dropout off (gradients flow all the same): the two passes must see the same network
    queries = ["what is the boundary layer", "shock wave", "heat"] * 3
    docs = [" ".join(["wing flow heat"] * n) for n in (1, 9, 3, 20, 2, 14, 5, 30, 7)]

    def run(chunk):
        monkeypatch.setattr(ce, "CHUNK_TOKENS", chunk)
        rr.model.zero_grad()
        scores = rr.forward_pairs(queries, docs)
        (scores * torch.arange(1.0, 10.0)).sum().backward()
        return scores.detach(), {n: p.grad.clone() for n, p in rr.model.named_parameters() if p.grad is not None}

    one, grads_one = run(10**9)
    chunked, grads_chunked = run(64)  # one to three pairs a chunk
    torch.testing.assert_close(chunked, one, rtol=1e-5, atol=1e-6)
    assert grads_one.keys() == grads_chunked.keys()
    for name in grads_one:
        torch.testing.assert_close(grads_chunked[name], grads_one[name], rtol=1e-4, atol=1e-6, msg=name)


def test_validation_never_changes_the_weights_trained(tokenizer, beir_folder, tmp_path):
    """Validating at every step, at some steps or never ends in bitwise the same final weights (so
    ``derive`` validates 4 times instead of 12 for the same model: only best/, the curve and the
    fusion weight depend on it)."""
    from pyterrier_mice.cli import main

    finals = []
    for every in (1, 3, 0):
        out = tmp_path / f"every{every}"
        path = _cli_config(
            out,
            tokenizer,
            beir_folder,
            steps=6,
            save_every=0,
            eval={"split": "holdout", "holdout": 0.4, "k": 5, "measure": "nDCG@10", "every": every},
        )
        assert main(["train", path]) == 0
        finals.append(load_reranker(str(out / "out" / "final")).model.state_dict())
        history = json.load(open(out / "out" / "trainer.json"))["history"]
        assert [h["step"] for h in history if "val" in h] == {1: [0, 1, 2, 3, 4, 5, 6], 3: [0, 3, 6], 0: []}[every]
    for other in finals[1:]:
        for k in finals[0]:
            assert torch.equal(finals[0][k], other[k]), k


def test_validation_and_out_of_domain_average_over_the_queries_measured(tokenizer, beir_folder, tmp_path):
    """A sample of queries is measured against the judgements of those queries only: judgements of
    the others (the whole split's qrels) would count each unmeasured query as a zero. The curve's last
    values equal the saved final model's, measured independently on the same queries."""
    import ir_measures

    from pyterrier_mice.training import bm25_run
    from pyterrier_mice.training.runner import measured_queries

    ds = BeirFolder(beir_folder)
    topics, qrels = measured_queries(ds, "test", 2, seed=0)
    assert len(topics) == 2 and set(qrels["qid"]) == set(topics["qid"])
    assert set(measured_queries(ds, "test", 3, 0, among={"1", "2"})[0]["qid"]) == {"1", "2"}
    data = beir_groups(ds, "test", str(tmp_path), k=10, negatives=2, seed=0)
    run = bm25_run(ds, topics, str(tmp_path), 5)
    everything = ds.get_qrels("test")  # 5 queries judged, 2 measured
    cfg = _cfg(tmp_path, "cross-encoder", loss="infonce", eval={"every": 2, "measure": "nDCG@10"})
    out = Trainer(cfg, _reranker(cfg, tokenizer), data, (run, everything), (run, everything)).train()
    last = out["history"][-1]
    final = load_reranker(os.path.join(cfg.output_dir, "final"))
    res = final(run).rename(columns={"qid": "query_id", "docno": "doc_id"})
    judged = qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"})
    expected = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], judged, res)[ir_measures.nDCG @ 10]
    assert last["val"] == pytest.approx(expected, abs=1e-6) and last["val_ood"] == pytest.approx(expected, abs=1e-6)


def test_pseudo_query_groups_complete_short_lists_from_the_whole_corpus(beir_folder, tmp_path, monkeypatch):
    """Where BM25 finds too few candidates, a group is completed with random documents of the whole
    corpus, group after group (it once drew them from the previous group's documents only, repeating
    that group or never finishing)."""
    import threading

    import pandas as pd

    from pyterrier_mice.evaluation import retrieval
    from pyterrier_mice.training import pseudo_query_groups

    class FindsNothing:
        def __call__(self, topics):
            return pd.DataFrame(columns=["qid", "docno", "rank", "score"])

    monkeypatch.setattr(retrieval, "bm25", lambda *a, **k: FindsNothing())
    ds = BeirFolder(beir_folder)
    out = []
    worker = threading.Thread(
        target=lambda: out.append(pseudo_query_groups(ds, str(tmp_path), 12, words=4, size=3, seed=0)), daemon=True
    )
    worker.start()
    worker.join(60)
    assert out, "pseudo_query_groups did not finish"
    groups = out[0]
    assert all(len(set(g.docnos)) == 3 for g in groups)
    assert len({d for g in groups for d in g.docnos}) > 3
    assert len({tuple(sorted(g.docnos)) for g in groups}) > 1
