"""Training: one step per model type and loss; kill-and-resume equals an uninterrupted run."""

import json
import os

import numpy as np
import pytest
import torch
import yaml

from pyterrier_mice import MiceModel
from pyterrier_mice.models.mice import MiceConfig
from pyterrier_mice.evaluation.datasets import BeirFolder
from pyterrier_mice.training import (
    MODEL_TYPES,
    Group,
    GroupData,
    ModelConfig,
    TrainConfig,
    Trainer,
    beir_groups,
    build_reranker,
    get_loss,
    load_reranker,
)

from conftest import tiny_encoder

SMALL = {
    "cross-encoder": {},
    "mice": {"first_interaction_layer": 2, "interaction_layers": 1},
    "colbert": {"dim": 16, "query_length": 8, "doc_length": 32},
    "prettr": {"split_layer": 2},
}


def _groups(n=6):
    docs = [
        "the boundary layer of a wing",
        "a blue house in paris",
        "shock wave in a tunnel",
        "the cat eats fish",
        "heat flow on a plate",
        "the dog runs to the tree",
    ]
    return GroupData(
        [
            Group(f"query {i} wing heat", [docs[i % 6], docs[(i + 1) % 6], docs[(i + 2) % 6]], [3.0, 1.0, 0.5])
            for i in range(n)
        ],
        seed=0,
    )


def _cfg(tmp_path, model_type, **kw):
    base = dict(
        output_dir=str(tmp_path / model_type),
        steps=4,
        batch_size=2,
        lr=1e-3,
        warmup=1,
        save_every=2,
        log_every=0,
        device="cpu",
        loss="margin_mse",
        model={"type": model_type, **SMALL[model_type]},
        eval={"every": 0},
    )
    base.update(kw)
    return TrainConfig.from_dict(base)


def _reranker(cfg, tokenizer):
    return build_reranker(cfg.model, tokenizer=tokenizer, encoder=tiny_encoder("bert", seed=3), device="cpu")


@pytest.mark.parametrize("model_type", MODEL_TYPES)
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
    assert os.path.exists(os.path.join(cfg.output_dir, "best", "config.json"))


def test_config_errors_and_overrides(tmp_path):
    with pytest.raises(ValueError, match="unknown key.* in the training config.*stepz"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="unknown key.* in 'model'.*typ"):
        TrainConfig.from_dict({"model": {"typ": "mice"}})
    with pytest.raises(ValueError, match="needs teacher scores"):
        get_loss("margin_mse")(torch.zeros(2, 2), None)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"steps": 10, "model": {"type": "mice"}}))
    cfg = TrainConfig.from_yaml(str(path), ["steps=3", "model.first_interaction_layer=2"])
    assert cfg.steps == 3 and cfg.model.first_interaction_layer == 2 and cfg.lr == 7e-6
    with pytest.raises(ValueError, match="unknown model type"):
        build_reranker(ModelConfig(type="bert"))


def _cli_config(tmp_path, tokenizer, beir_folder, **over):
    backbone = tmp_path / "backbone"
    if not backbone.exists():
        tiny_encoder("bert").save_pretrained(backbone)
        tokenizer.save_pretrained(backbone)
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "steps": 2,
        "batch_size": 2,
        "warmup": 0,
        "lr": 1e-4,
        "loss": "infonce",
        "device": "cpu",
        "log_every": 0,
        "save_every": 1,
        "model": {"type": "mice", "backbone": str(backbone), "first_interaction_layer": 2, "interaction_layers": 2},
        "data": {"kind": "beir", "path": beir_folder, "split": "test", "bm25_k": 5},
        "eval": {"every": 0},
    }
    cfg.update(over)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_train_on_a_beir_folder(tokenizer, beir_folder, tmp_path):
    from pyterrier_mice.cli import main

    path = _cli_config(
        tmp_path,
        tokenizer,
        beir_folder,
        loss="bce",
        save_every=0,
        eval={"split": "holdout", "holdout": 0.4, "k": 5, "measure": "nDCG@10", "every": 1},
    )
    assert main(["train", path, "--set", "seed=3"]) == 0
    assert os.path.exists(tmp_path / "out" / "final" / "config.json")
    assert os.path.exists(tmp_path / "out" / "best" / "config.json")


def test_resume_refuses_a_changed_config(tokenizer, beir_folder, tmp_path, capsys):
    from pyterrier_mice.cli import main
    from pyterrier_mice.training.trainer import CONFIG_FILE

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    assert main(["train", path]) == 0
    saved = yaml.safe_load(open(tmp_path / "out" / CONFIG_FILE))
    assert saved["lr"] == 1e-4 and saved["model"]["type"] == "mice"
    for change, shown in [
        ("lr=0.5", "lr: 0.0001 → 0.5"),
        ("loss=bce", "loss: 'infonce' → 'bce'"),
        ("steps=8", "steps: 2 → 8"),
        ("model.type=cross-encoder", "model.type: 'mice' → 'cross-encoder'"),
    ]:
        capsys.readouterr()
        assert main(["train", path, "--set", change]) == 2
        err = capsys.readouterr().err
        assert shown in err and "--overwrite" in err and "--resume-anyway" in err and "Traceback" not in err
    # a finished run's resumable checkpoint is removed at its end: it cannot be continued, and says so
    assert not os.path.exists(tmp_path / "out" / "checkpoint")
    capsys.readouterr()
    assert main(["train", path, "--set", "steps=4", "--resume-anyway"]) == 2
    assert "checkpoint was removed at its end" in capsys.readouterr().err
    # kept (keep_checkpoint, which is no change of config), it continues deliberately: the schedule
    # follows the new config (linear decay to 0 at the new last step)
    assert main(["train", path, "--overwrite", "--set", "keep_checkpoint=true"]) == 0
    assert main(["train", path, "--set", "steps=4", "--resume-anyway", "--set", "keep_checkpoint=true"]) == 0
    state = json.load(open(tmp_path / "out" / "checkpoint" / "trainer.json"))
    assert state["step"] == 4 and [h["step"] for h in state["history"]] == [1, 2, 3, 4]
    assert state["history"][2]["lr"] == pytest.approx(1e-4 * 1 / 4) and state["history"][3]["lr"] == 0
    assert main(["train", path, "--set", "model.type=cross-encoder", "--overwrite"]) == 0


def test_resume_accepts_a_config_written_before_an_option_existed(tokenizer, beir_folder, tmp_path, capsys):
    # an option added to the package since the run started is not a change while it keeps its default
    from pyterrier_mice.cli import main
    from pyterrier_mice.training.trainer import CONFIG_FILE

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    assert main(["train", path]) == 0
    saved = json.load(open(tmp_path / "out" / CONFIG_FILE))
    del saved["model"]["mice"]["query_reads_cls"], saved["model"]["doc_position_offset"]
    json.dump(saved, open(tmp_path / "out" / CONFIG_FILE, "w"))
    assert main(["train", path]) == 0
    assert main(["train", path, "--set", "model.query_reads_cls=true"]) == 2
    assert "model.mice.query_reads_cls: False → True" in capsys.readouterr().err


def test_resume_accepts_a_config_saved_in_the_flat_layout(tokenizer, beir_folder, tmp_path, capsys):
    """Runs saved before MICE's options had their section (``model.first_interaction_layer`` …, the
    options added since missing) resume under the same config, and a change is still reported."""
    from pyterrier_mice.cli import main
    from pyterrier_mice.training.trainer import CONFIG_FILE

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    assert main(["train", path]) == 0
    saved = json.load(open(tmp_path / "out" / CONFIG_FILE))
    options = saved["model"].pop("mice")
    for new_since in ("skip_last_cls_cross", "reference_kernel", "interaction_self_attention"):
        options.pop(new_since)
    saved["model"].update(options)
    json.dump(saved, open(tmp_path / "out" / CONFIG_FILE, "w"))
    assert main(["train", path]) == 0
    assert main(["train", path, "--set", "model.interaction=cross_first"]) == 2
    assert "model.mice.interaction: 'sequential' → 'cross_first'" in capsys.readouterr().err


def test_cli_config_errors_are_one_line_before_any_work(tokenizer, beir_folder, tmp_path, capsys):
    from pyterrier_mice.cli import main

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    for args, shown in [
        (["--set", "steps=abc"], "steps='abc' is not a valid int"),
        (["--set", "model=foo"], "'model' is a section"),
        (["--set", "loss=bcx"], "loss='bcx'; expected one of"),
        (["--set", "loss=margin_mse"], "needs teacher scores"),
        (["--set", "loss=kl_div"], "needs teacher scores"),
    ]:
        capsys.readouterr()
        assert main(["train", path, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert shown in err and len(err.splitlines()) == 1, err
        assert not os.path.exists(tmp_path / "out"), "work started before the config was checked"
    with pytest.raises(ValueError):
        main(["--debug", "train", path, "--set", "steps=abc"])
    cfg = TrainConfig.from_yaml(path, ["lr=1e-4", "steps=3.0", "model.interaction_layers="])
    assert cfg.lr == 1e-4 and isinstance(cfg.lr, float) and cfg.steps == 3 and cfg.model.interaction_layers is None


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
    with pytest.warns(UserWarning, match="never improved.*step-0 weights"):
        out = Trainer(cfg, _reranker(cfg, tokenizer), data, (run, ds.get_qrels("test"))).train()
    assert out["best"]["step"] == 0
    printed = capsys.readouterr().out
    assert "WARNING: best/ is the untrained step-0 model" in printed and "step 0: validation nDCG@10 = " in printed


class _CountingTeacher:
    """A stand-in teacher: scores = text lengths; counts the pairs it scores; can die after N calls."""

    def __init__(self, die_after=None, tag="a"):
        self.scored, self.calls, self.die_after, self.tag = 0, 0, die_after, tag

    def _config_key(self):
        return ("teacher", self.tag)

    def score_pairs(self, queries, docs):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            raise KeyboardInterrupt("killed")
        self.scored += len(queries)
        return np.array([len(q) + 0.5 * len(d) for q, d in zip(queries, docs)], dtype=np.float32)


def test_teacher_scores_are_cached_and_resumed(tmp_path, monkeypatch):
    from pyterrier_mice.training import teacher as teacher_mod

    monkeypatch.setattr(teacher_mod, "CHUNK", 4)
    ckpt = tmp_path / "teacher"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    qs = [f"query {i}" for i in range(10)]
    ds = [f"document number {i} " * (i + 1) for i in range(10)]
    expected = np.array([len(q) + 0.5 * len(d) for q, d in zip(qs, ds)], dtype=np.float32)
    dying = _CountingTeacher(die_after=2)
    with pytest.raises(KeyboardInterrupt):
        teacher_mod.teacher_scores(dying, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False)
    assert dying.scored == 8
    resumed = _CountingTeacher()
    np.testing.assert_array_equal(
        teacher_mod.teacher_scores(resumed, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False), expected
    )
    assert resumed.scored == 2  # only what the killed run had not done
    again = _CountingTeacher()
    np.testing.assert_array_equal(
        teacher_mod.teacher_scores(again, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False), expected
    )
    assert again.scored == 0  # a rerun never scores again
    other = _CountingTeacher(tag="b")  # another teacher setting, or other data: scored anew
    teacher_mod.teacher_scores(other, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False)
    teacher_mod.teacher_scores(again, str(ckpt), qs, ds[::-1], str(tmp_path / "cache"), verbose=False)
    assert other.scored == 10 and again.scored == 10


def test_teacher_scores_at_the_students_lengths(tokenizer, beir_folder, tmp_path):
    from pyterrier_mice.training import teacher_lengths

    backbone = tmp_path / "ce"
    tiny_encoder("bert").save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    cfg = TrainConfig.from_dict({"model": {"type": "mice", "query_max_length": 16, "doc_max_length": 64}})
    assert teacher_lengths(cfg, str(backbone)) == {"max_length": 80}
    cfg = TrainConfig.from_dict(
        {"model": {"type": "mice", "query_max_length": 16, "doc_max_length": 64}, "data": {"teacher_max_length": 100}}
    )
    assert teacher_lengths(cfg, str(backbone)) == {"max_length": 100}
    cfg = TrainConfig.from_dict({"model": {"type": "cross-encoder", "max_length": 48}})
    assert teacher_lengths(cfg, str(backbone)) == {"max_length": 48}


def test_teacher_scores_no_longer_than_it_was_trained(tokenizer, tmp_path):
    """A cross-encoder teacher trained at 48 tokens scores at 48, not at a longer student's 80: a
    trained teacher run past its training length ranks worse (on Cranfield, 25.0 nDCG@10 at 160
    tokens against 28.4 at its 128), and the student would imitate that worse teacher."""
    from pyterrier_mice import MaskedCrossEncoderModel
    from pyterrier_mice.training import teacher_lengths

    ce = tmp_path / "ce"
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer)
    model.config.trained_lengths = {"max_length": 48, "query_max_length": None, "doc_max_length": None}
    model.save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    mice = {"type": "mice", "query_max_length": 16, "doc_max_length": 64}
    assert teacher_lengths(TrainConfig.from_dict({"model": mice}), str(ce)) == {"max_length": 48}
    assert teacher_lengths(TrainConfig.from_dict({"model": {"type": "cross-encoder", "max_length": 32}}), str(ce)) == {
        "max_length": 32
    }  # a shorter student: its length
    assert teacher_lengths(TrainConfig.from_dict({"model": mice, "data": {"teacher_max_length": 100}}), str(ce)) == {
        "max_length": 100
    }  # told otherwise


def test_derive_from_a_cross_encoder(tokenizer, beir_folder, tmp_path, capsys):
    """One command: MICE initialised from the cross-encoder (its head kept) and distilled from it
    with teacher scores cached next to the run; a rerun never scores again."""
    from pyterrier_mice import MaskedCrossEncoderModel, MiceReranker
    from pyterrier_mice.cli import main

    ce = tmp_path / "ce"
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", seed=4), tokenizer).save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    out = tmp_path / "derived"
    args = [
        "derive",
        str(ce),
        "--data",
        beir_folder,
        "--out",
        str(out),
        "--set",
        "steps=2",
        "--set",
        "data.split=test",
        "--set",
        "eval.every=0",
        "--set",
        "data.bm25_k=5",
        "--set",
        "model.first_interaction_layer=2",
        "--set",
        "model.interaction_layers=2",
        "--set",
        "save_every=1",
        "--set",
        "data.pseudo_queries=4",
    ]
    assert main(args) == 0
    cached = os.listdir(out / "teacher")
    assert len(cached) == 1 and cached[0].endswith(".npy")
    assert (
        len(np.load(out / "teacher" / cached[0])) == (8 + 4) * 4
    )  # 8 judged groups (1 query held out) + 4 pseudo-queries
    saved = json.load(open(out / "train_config.json"))
    assert saved["loss"] == "margin_mse" and saved["model"]["backbone"] == saved["data"]["teacher"] == str(ce)
    rr = MiceReranker.from_pretrained(str(out / "final"))
    assert rr.model.config.first_interaction_layer == 2
    capsys.readouterr()
    assert main(args + ["--overwrite"]) == 0  # retrained: the teacher's scores are read back, not computed
    shown = capsys.readouterr().out
    assert "teacher scores of" in shown and os.listdir(out / "teacher") == cached
    assert f"teacher {ce} scores at max_length" in shown  # the length it scores at is said


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


def test_derive_keeps_a_third_of_the_layers_apart_and_every_layer_above(tokenizer, beir_folder, tmp_path, capsys):
    """``derive`` sizes MICE to its source: ℓ* = a third of the layers (MICE-ℓ2+4 of a 6-layer
    cross-encoder, ℓ4+8 of a 12-layer one), every layer above ℓ* kept (the head was trained on the
    last one); the user's depth wins; a config file of the user's is taken as it is."""
    import argparse
    from pyterrier_mice import MaskedCrossEncoderModel
    from pyterrier_mice.training.derive import derive_config

    sources = {}
    for n in (6, 12, 1):
        sources[n] = tmp_path / f"ce{n}"
        MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", num_hidden_layers=n), tokenizer).save_pretrained(
            sources[n]
        )
        tokenizer.save_pretrained(sources[n])
    hf = tmp_path / "hf12"
    tiny_encoder("bert", num_hidden_layers=12).save_pretrained(hf)  # a plain HF BertForSequenceClassification
    tokenizer.save_pretrained(hf)

    def depth(source, *sets, config=None):
        ns = argparse.Namespace(
            source=str(source), data=beir_folder, config=config, out=str(tmp_path / "o"), overrides=list(sets)
        )
        cfg = TrainConfig.from_yaml(*derive_config(ns))
        return cfg.model.first_interaction_layer, cfg.model.interaction_layers

    assert depth(sources[6]) == (2, 4)
    assert "MICE-ℓ2+4 from a 6-layer cross-encoder" in capsys.readouterr().out
    assert depth(sources[12]) == depth(hf) == (4, 8)
    assert depth(sources[12], "model.first_interaction_layer=3", "model.interaction_layers=2") == (3, 2)
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(
        yaml.safe_dump({"model": {"type": "mice", "first_interaction_layer": 5, "interaction_layers": 1}})
    )
    assert depth(sources[12], config=str(recipe)) == (5, 1)
    with pytest.raises(ValueError, match="has 1 layer.*at least 2"):
        depth(sources[1])


def test_derive_sizes_documents_to_the_collection_and_the_source(tokenizer, beir_folder, tmp_path, capsys):
    """``derive`` reads documents as long as 95% of the folder's (rounded up to 32 tokens), never
    longer than the source reads well (its trained length, else its position limit): a recipe's
    fixed length would cut what the cross-encoder ranks on. The user's length and config win."""
    import argparse
    from pyterrier_mice import MaskedCrossEncoderModel
    from pyterrier_mice.training.derive import derive_config

    long_folder = tmp_path / "long"
    (long_folder / "qrels").mkdir(parents=True)
    with open(long_folder / "corpus.jsonl", "w") as f:  # 20 documents of 40 to 97 words, one token each
        for i in range(20):
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(["wing"] * (40 + 3 * i))}) + "\n")
    (long_folder / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "wing"}) + "\n")
    plain = tmp_path / "plain"  # a HF cross-encoder reading 128 positions
    tiny_encoder("bert").save_pretrained(plain)
    tokenizer.save_pretrained(plain)
    trained = tmp_path / "trained48"  # this package's, trained on pairs of 48 tokens
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer)
    model.config.trained_lengths = {"max_length": 48, "query_max_length": None, "doc_max_length": None}
    model.save_pretrained(trained)
    tokenizer.save_pretrained(trained)

    def doc_length(source, folder, *sets, config=None):
        ns = argparse.Namespace(
            source=str(source), data=str(folder), config=config, out=str(tmp_path / "o"), overrides=list(sets)
        )
        return TrainConfig.from_yaml(*derive_config(ns)).model.doc_max_length

    assert doc_length(plain, beir_folder) == 32  # short documents (at most 12 tokens): not 128
    assert "documents up to 32 tokens (95% of the documents fit" in capsys.readouterr().out
    assert doc_length(plain, long_folder) == 128  # 95% of them need 96 + 2 tokens → 128 of the 128 it reads
    capsys.readouterr()
    assert doc_length(trained, long_folder) == 48  # no longer than it was trained at (3 of the 20 fit)
    assert (
        "documents up to 48 tokens (the longest the source reads well; 15% of the documents fit"
        in capsys.readouterr().out
    )
    assert doc_length(plain, long_folder, "model.doc_max_length=64") == 64
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(yaml.safe_dump({"model": {"type": "mice", "doc_max_length": 80}}))
    assert doc_length(plain, long_folder, config=str(recipe)) == 80


def test_derive_and_distillation_refuse_what_would_train_on_nonsense(tokenizer, beir_folder, tmp_path, capsys):
    """A base encoder (no classification head) as the source or teacher would distil random
    scores, and a missing training split fails only after the run folder is written: each is one
    line naming the argument, before any work."""
    from transformers import BertModel

    from pyterrier_mice import MaskedCrossEncoderModel
    from pyterrier_mice.cli import main

    base = tmp_path / "base"
    BertModel(tiny_encoder("bert").config).save_pretrained(base)  # architectures: ['BertModel']
    tokenizer.save_pretrained(base)
    ce = tmp_path / "ce"
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    out = tmp_path / "out"
    for args, shown in [
        (
            ["derive", str(base), "--data", beir_folder, "--set", "data.split=test"],
            "has no classification head (a base encoder, not a cross-encoder)",
        ),
        (["derive", beir_folder, "--data", beir_folder], "holds no config.json: not a Hugging Face checkpoint"),
        (
            ["derive", str(ce), "--data", beir_folder],
            "data.split='train': " + beir_folder + " has no qrels/train.tsv (its splits: ['test'])",
        ),
        (
            [
                "train",
                _cli_config(tmp_path, tokenizer, beir_folder),
                "--set",
                "loss=margin_mse",
                "--set",
                f"data.teacher={base}",
            ],
            "data.teacher: '" + str(base) + "' has no classification head",
        ),
    ]:
        capsys.readouterr()
        assert main(args + (["--out", str(out)] if args[0] == "derive" else [])) == 2
        err = capsys.readouterr().err.strip()
        assert shown in err and len(err.splitlines()) == 1, err
        assert not os.path.exists(out), "the run folder was written before the error"


def test_derive_targets_either_form(tokenizer, beir_folder, tmp_path, capsys):
    """``derive --form newer`` distils the authors' newer MICE (cross-attention first, [CLS] reading
    the document), here with its exact-match heads, whose training reads the token ids; without
    --form the recipe's default form is built, and a config of the user's is taken as it is."""
    import argparse
    from pyterrier_mice import MaskedCrossEncoderModel, MiceReranker
    from pyterrier_mice.cli import main
    from pyterrier_mice.training.derive import DEFAULT_FORM, FORMS, derive_config

    ce = tmp_path / "ce"
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", seed=4), tokenizer).save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    out = tmp_path / "newer"
    args = [
        "derive",
        str(ce),
        "--data",
        beir_folder,
        "--out",
        str(out),
        "--form",
        "newer",
        "--set",
        "steps=2",
        "--set",
        "data.split=test",
        "--set",
        "eval.every=0",
        "--set",
        "data.bm25_k=5",
        "--set",
        "model.exact_match_heads=true",
    ]
    assert main(args) == 0
    assert "the newer MICE form" in capsys.readouterr().out
    cfg = MiceReranker.from_pretrained(str(out / "final")).model.config
    assert (cfg.interaction, cfg.cls_cross_attention, cfg.exact_match_heads) == ("cross_first", "attend", True)

    def model_of(form=None, config=None):
        ns = argparse.Namespace(
            source=str(ce), data=beir_folder, config=config, out=str(tmp_path / "o"), overrides=[], form=form
        )
        m = TrainConfig.from_yaml(*derive_config(ns)).model
        return {"model.interaction": m.interaction, "model.cls_cross_attention": m.cls_cross_attention}

    assert model_of() == FORMS[DEFAULT_FORM] and model_of("older") == FORMS["older"]
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(
        yaml.safe_dump({"model": {"type": "mice", "interaction": "joint", "cls_cross_attention": "none"}})
    )
    assert model_of(config=str(recipe)) == {"model.interaction": "joint", "model.cls_cross_attention": "none"}
    with pytest.raises(Exception, match="global_cls cannot be combined"):
        TrainConfig.from_dict({"model": {"type": "mice", "global_cls": True, "exact_match_heads": True}})


def test_a_failed_run_does_not_block_its_corrected_rerun(tokenizer, beir_folder, tmp_path, capsys):
    """A run that failed before saving any step (here: a depth its backbone does not have) leaves no
    config that refuses the corrected command; a run that saved a step still does."""
    from pyterrier_mice.cli import main

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    assert main(["train", path, "--set", "model.first_interaction_layer=5"]) == 2  # 4-layer backbone
    assert "first_interaction_layer=5" in capsys.readouterr().err
    assert main(["train", path]) == 0  # corrected: no --overwrite needed
    assert main(["train", path, "--set", "lr=0.5"]) == 2  # a run with saved steps still refuses a change
    assert "holds a run with another config" in capsys.readouterr().err


def test_an_invalid_measure_fails_before_any_work_naming_its_key(tokenizer, beir_folder, tmp_path, capsys):
    from pyterrier_mice.cli import main

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    capsys.readouterr()
    assert main(["train", path, "--set", "eval.measure=nDCG@ten"]) == 2
    err = capsys.readouterr().err.strip()
    assert "eval.measure='nDCG@ten'" in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "out"), "work started before the config was checked"


class _SlowTeacher(_CountingTeacher):
    def score_pairs(self, queries, docs):
        import time

        time.sleep(0.05)
        return super().score_pairs(queries, docs)


def _score_in_a_process(args):
    from pyterrier_mice.training import teacher as teacher_mod

    teacher_mod.CHUNK = 2
    ckpt, qs, ds, cache = args
    t = _SlowTeacher()
    return teacher_mod.teacher_scores(t, ckpt, qs, ds, cache, verbose=False).tolist(), t.scored


def test_two_processes_scoring_the_same_pairs_share_the_cache(tmp_path):
    """Two runs that need the teacher's scores of the same pairs at the same time (two variants of one
    comparison, same seed): one scores, the other waits and reads; neither fails."""
    import multiprocessing

    ckpt = tmp_path / "teacher"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    qs = [f"query {i}" for i in range(12)]
    ds = [f"document {i} " * (i + 1) for i in range(12)]
    args = (str(ckpt), qs, ds, str(tmp_path / "cache"))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_score_in_a_process, [args, args])
    expected = [len(q) + 0.5 * len(d) for q, d in zip(qs, ds)]
    assert all(np.allclose(scores, expected) for scores, _ in results)
    assert sorted(n for _, n in results) == [0, 12]  # scored once


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

    from pyterrier_mice.training import TrainConfig, load_reranker, run

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


def test_affordable_steps_follow_the_budget_within_bounds():
    from pyterrier_mice.training.sizing import MIN_STEPS, affordable_steps

    assert affordable_steps(1_500_000, 32 * 250, groups=700, batch_size=8) == 187  # SciFact-like: the budget binds
    assert affordable_steps(1_500_000, 32 * 100, groups=120, batch_size=8) == 60  # 4 passes over 120 groups
    assert affordable_steps(1_500_000, 32 * 100, groups=30, batch_size=8) == MIN_STEPS
    assert affordable_steps(10_000, 32 * 500, groups=700, batch_size=8) == MIN_STEPS


def test_auto_sizes_follow_the_collection(tokenizer, beir_folder, tmp_path, capsys):
    """``auto``: the pair length covers 95% of the documents beside a median query (never more than the
    backbone reads), the steps are what the token budget affords, warm-up a tenth, 4 validations."""
    from pyterrier_mice.cli import main
    from pyterrier_mice.training.trainer import CONFIG_FILE

    path = _cli_config(
        tmp_path,
        tokenizer,
        beir_folder,
        steps="auto",
        warmup="auto",
        budget_tokens=20000,
        model={"type": "cross-encoder", "backbone": str(tmp_path / "backbone"), "max_length": "auto"},
        data={"kind": "beir", "path": beir_folder, "split": "test", "bm25_k": 5, "negatives": 1},
        eval={"split": "holdout", "holdout": 0.4, "k": 5, "every": "auto"},
    )
    assert main(["train", path]) == 0
    out = capsys.readouterr().out
    saved = json.load(open(tmp_path / "out" / CONFIG_FILE))
    # documents of at most 12 tokens + a median query of ~6 + 3 specials: one multiple of 32
    assert saved["model"]["max_length"] == 32 and "model.max_length=32 (95% of the documents fit" in out
    # 6 training groups (2 of 5 queries held out): 4 passes would be 12 steps, fewer than the 50 at least;
    # 52, so that 4 validations fall at 13, 26, 39 and 52
    assert saved["steps"] == 52 and saved["warmup"] == 5 and saved["eval"]["every"] == 13
    assert "steps=52 (20,000 pair tokens of budget" in out and "passes over 6 training groups" in out
    assert main(["train", path]) == 0  # the same sizes again: the finished run is recognised
    assert "finished before (step 52); nothing to train" in capsys.readouterr().out
    capsys.readouterr()
    bad = _cli_config(tmp_path / "bad", tokenizer, beir_folder, steps="many")
    assert main(["train", bad]) == 2
    assert "steps='many' is not a valid int (or 'auto'" in capsys.readouterr().err


# a value other than the default for each of MICE's options, and the backbone it applies to
NON_DEFAULT_OPTIONS = {
    "first_interaction_layer": (3, "bert"),
    "interaction_layers": (1, "bert"),
    "cls_cross_attention": ("attend", "bert"),
    "query_reads_cls": (True, "bert"),
    "interaction_self_attention": (False, "bert"),
    "unmasked_local_layers": (True, "modernbert"),
    "interaction": ("cross_first", "bert"),
    "doc_cls": (False, "bert"),
    "doc_token_type": (1, "bert"),
    "doc_position_offset": (40, "bert"),
    "global_cls": (True, "bert"),
    "exact_match_heads": (True, "bert"),
    "lexical_bias": (True, "bert"),
    "compress_dim": (2.0, "bert"),
    "shared_bottom_layers": (False, "bert"),
    "doc_layers": (1, "bert"),
    "pooling": ("mean", "modernbert"),
    "local_window": (False, "modernbert"),
    "skip_last_cls_cross": (True, "bert"),
    "reference_kernel": ("eager", "bert"),
}
NEEDS = {"doc_layers": {"shared_bottom_layers": False}, "skip_last_cls_cross": {"cls_cross_attention": "none"}}


def test_every_mice_option_is_set_from_a_training_config_and_round_trips(tokenizer, tmp_path):
    """Each :class:`MiceConfig` option, set in a training config (``model.<option>``), reaches the
    model built from it, and comes back from ``save_pretrained`` / ``from_pretrained``."""
    from pyterrier_mice.training import build_reranker

    assert set(NON_DEFAULT_OPTIONS) == set(MiceConfig.option_types())  # an option added is an option tested
    defaults = MiceConfig.option_defaults()
    for option, (value, kind) in NON_DEFAULT_OPTIONS.items():
        assert value != defaults[option]
        backbone = tmp_path / kind
        if not backbone.exists():
            tiny_encoder(kind, num_hidden_layers=6).save_pretrained(backbone)
            tokenizer.save_pretrained(backbone)
        depth = {"first_interaction_layer": 2, "interaction_layers": 2}
        model = {"type": "mice", "backbone": str(backbone), **depth, **NEEDS.get(option, {}), option: value}
        cfg = TrainConfig.from_dict({"model": model})
        assert getattr(cfg.model, option) == value
        rr = build_reranker(cfg.model, device="cpu")
        assert getattr(rr.model.config, option) == value, option
        rr.model.save_pretrained(tmp_path / option)
        assert getattr(MiceModel.from_pretrained(str(tmp_path / option)).config, option) == value, option
        again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))  # a saved run's config
        assert again.to_dict() == cfg.to_dict()
