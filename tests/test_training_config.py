"""Training configs: YAML and ``--set`` typed and validated, MICE's options passed to MiceConfig,
resuming under a changed or older config, sizes chosen for the collection."""

import json
import os
import re

import pytest
import torch
import yaml

from pyterrier_mice import MiceModel
from pyterrier_mice.models.mice import MiceConfig
from pyterrier_mice.training import (
    ModelConfig,
    TrainConfig,
    build_reranker,
    get_loss,
)

from conftest import tiny_encoder

from training_helpers import _cli_config

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyterrier_mice", "configs")


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(CONFIGS) if f.endswith(".yaml")))
def test_every_shipped_config_loads_once_its_placeholders_are_set(name, tmp_path):
    with open(os.path.join(CONFIGS, name), encoding="utf8") as f:
        text = re.sub(r"REPLACE_WITH_\w+", "some/model", f.read())
    (tmp_path / name).write_text(text, encoding="utf8")
    TrainConfig.from_yaml(str(tmp_path / name))


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
        ("model.interaction_layers=1", "model.mice.interaction_layers: 2 → 1"),
    ]:
        capsys.readouterr()
        assert main(["train", path, "--set", change]) == 2
        err = capsys.readouterr().err
        assert shown in err and "--overwrite" in err and "--resume-anyway" in err and "Traceback" not in err
    # another family's options do not carry over: the keys that are not its options are named
    capsys.readouterr()
    assert main(["train", path, "--set", "model.type=cross-encoder"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) in 'model': ['first_interaction_layer', 'interaction_layers']" in err
    assert "cross-encoder's options: ['policy']" in err and len(err.strip().splitlines()) == 1
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
    assert main(["train", path, "--set", "model.interaction_layers=1", "--overwrite"]) == 0


def test_resume_accepts_a_config_written_before_an_option_existed(tokenizer, beir_folder, tmp_path, capsys):
    # an option added to the package since the run started is not a change while it keeps its default
    from pyterrier_mice.cli import main
    from pyterrier_mice.training.trainer import CONFIG_FILE

    path = _cli_config(tmp_path, tokenizer, beir_folder)
    assert main(["train", path]) == 0
    saved = json.load(open(tmp_path / "out" / CONFIG_FILE))
    del saved["model"]["mice"]["query_reads_cls"], saved["model"]["mice"]["doc_position_offset"]
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
        (["--set", "model.interaction=jointx"], "model.interaction='jointx' is not one of ('sequential', "),
        (["--set", "model.mice.pooling=max"], "model.pooling='max' is not one of ('cls', 'mean', 'padded_mean')"),
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


def test_validation_takes_a_bounded_share_of_a_short_run(tokenizer, beir_folder, tmp_path, capsys):
    """``eval.every: auto`` on a run too short to afford more: one validation, at its end (where the
    fusion weight is chosen), none at step 0; a long run validates at step 0 and 4 times after."""
    from pyterrier_mice.training.config import TrainConfig
    from pyterrier_mice.training.sizing import resolve_auto, validation_passes

    def cfg(steps):
        return TrainConfig.from_dict(
            {
                "steps": steps,
                "batch_size": 2,
                "model": {"type": "cross-encoder", "backbone": str(tmp_path / "backbone")},
                "data": {"kind": "beir", "path": beir_folder, "split": "test", "negatives": 1},
                "eval": {"split": "holdout", "holdout": 0.4, "k": 30, "every": "auto"},
            }
        )

    _cli_config(tmp_path, tokenizer, beir_folder)  # saves the backbone
    short, long = cfg(2), cfg(400)
    assert validation_passes(short) == 1 and validation_passes(long) == 5
    said = resolve_auto(short)
    assert (short.eval.every, short.eval.at_start) == (2, False) and "one validation, at the end" in said[-1]
    resolve_auto(long)
    assert (long.eval.every, long.eval.at_start) == (100, True)


def test_settings_derived_from_steps_follow_the_steps_a_user_sets(tmp_path):
    """A recipe's warm-up and validation spacing follow ``--set steps=N`` unless set too (the audit:
    ``--set steps=20`` kept ``warmup: 20``, so the learning rate rose for the whole run)."""
    from pyterrier_mice.training.config import TrainConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"steps": 400, "warmup": 20, "eval": {"every": 100}}))
    cfg = TrainConfig.from_yaml(str(recipe), ["steps=20"])
    assert (cfg.steps, cfg.warmup, cfg.eval.every) == (20, "auto", "auto")
    cfg = TrainConfig.from_yaml(str(recipe), ["steps=20", "warmup=3"])
    assert (cfg.warmup, cfg.eval.every) == (3, "auto")
    assert TrainConfig.from_yaml(str(recipe)).warmup == 20  # the recipe as written
