"""``pyterrier-mice derive``: MICE initialised from a cross-encoder and distilled from it; its depth,
document length and form."""

import json
import os

import numpy as np
import pytest
import yaml

from pyterrier_mice.training import (
    TrainConfig,
)

from conftest import tiny_encoder

from training_helpers import _cli_config


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
    # the same, spelt in MICE's section
    assert depth(sources[12], "model.mice.first_interaction_layer=3", "model.mice.interaction_layers=2") == (3, 2)
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
