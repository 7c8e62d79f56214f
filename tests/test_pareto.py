"""``benchmarks/pareto.py``: its Kendall τ equals scipy's τ-b (ties included), its Pareto front keeps
exactly the systems nothing beats on both axes, and one run over tiny trained models writes every
row (each reduced precision beside its fp32 path, which agrees with itself exactly)."""

import json
import os
import sys

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from pyterrier_mice import MaskedCrossEncoderModel, MiceModel

from conftest import tiny_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "experiments"))
import figures  # noqa: E402
import pareto  # noqa: E402


def test_kendall_tau_is_scipys_tau_b():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 5, 12).astype(float)  # many ties
        b = a + rng.normal(0, 1.5, 12).round()
        np.testing.assert_allclose(pareto.kendall_tau(a, b), kendalltau(a, b).statistic, atol=1e-12)
    assert pareto.kendall_tau(np.arange(5.0), np.arange(5.0)) == 1.0


def test_pareto_front_keeps_the_undominated():
    points = {
        "slow best": (100, 0.5),
        "fast worst": (1, 0.2),
        "dominated": (50, 0.3),
        "middle": (10, 0.4),
        "tie": (10, 0.39),
    }
    assert figures.pareto_front(points) == ["fast worst", "middle", "slow best"]


def test_agreement_of_a_run_with_itself_and_a_swap():
    import pandas as pd

    run = pd.DataFrame({"qid": ["1"] * 3, "docno": ["a", "b", "c"], "score": [3.0, 2.0, 1.0]})
    qrels = pd.DataFrame({"qid": ["1"], "docno": ["c"], "label": [1]})
    same = pareto.agreement(run, run, qrels)
    assert same == {"max_abs": 0.0, "kendall": 1.0, "delta": 0.0}
    swapped = run.assign(score=[1.0, 2.0, 3.0])
    moved = pareto.agreement(run, swapped, qrels)
    assert moved["kendall"] == -1.0 and moved["max_abs"] == 2.0 and moved["delta"] > 0
    with pytest.raises(ValueError, match="do not rank the same candidates"):
        pareto.agreement(run, run.head(2), qrels)


def _save(model, tokenizer, path, weight=0.5):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    with open(os.path.join(path, "fusion.json"), "w") as f:
        json.dump({"weight": weight, "normalise": "minmax", "depth": 20}, f)
    return str(path)


def test_one_run_writes_every_row(beir_folder, tokenizer, tmp_path):
    torch.manual_seed(0)
    ce = _save(
        MaskedCrossEncoderModel.from_encoder(tiny_encoder(num_hidden_layers=6), tokenizer), tokenizer, tmp_path / "ce"
    )
    mice = _save(
        MiceModel.from_encoder(tiny_encoder(num_hidden_layers=6), tokenizer, 2, 2), tokenizer, tmp_path / "mice"
    )
    out, saved, figure = tmp_path / "p.md", tmp_path / "p.json", tmp_path / "p.png"
    pareto.main(
        ["--dataset", beir_folder, "--k", "6", "--ce", ce, "--mice", mice, "--work", str(tmp_path / "work"),
         "--out", str(out), "--json", str(saved), "--figure", str(figure), "--batch-size", "4"]
    )  # fmt: skip
    result = json.loads(saved.read_text())
    names = [s["system"] for s in result["systems"]]
    expected = ["BM25", "CE", "CE, int8", "CE weights, Mask 1", "CE weights, Sparse CE", "CE + BM25", "MICE + BM25"]
    expected += ["MICE, on the fly", "MICE, states index", "MICE, K/V index", "MICE, K/V index, bf16"]
    assert set(expected) <= set(names)
    assert set(result["rows"]) >= {
        f"{p}@{x}" for p in ("cross-encoder", "mice", "mice-index", "mice-index-kv") for x in ("bf16", "int8")
    }
    for row in result["rows"].values():
        assert -1 <= row["kendall"] <= 1 and row["max_abs"] >= 0 and row["speedup"] > 0
    assert any(s["front"] for s in result["systems"]) and figure.exists()
    assert "| MICE, states index, int8 |" in out.read_text()
