"""The device under test (``MICE_TEST_DEVICE``; default: cuda when present, else cpu): every
re-ranker in each precision the device runs (CUDA: fp32, fp16, bf16; CPU: fp32, bf16 autocast, int8
quantised) scores as fp32 on the CPU, within a stated tolerance; an index built there serves a CPU
re-ranker exactly; training steps run in bf16 through accelerate. ``benchmarks/gpu_check.py``
runs these on a GPU; CI runs them on the CPU (``pytest -m device``)."""

import os

import numpy as np
import pandas as pd
import pytest
import torch

from pyterrier_mice import MiceIndex, MiceModel, MiceReranker

from conftest import DOCS, QUERIES, tiny_encoder
from rerankers import FACTORIES

pytestmark = pytest.mark.device
DEVICE = os.environ.get("MICE_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
#: |score − fp32 CPU score| allowed, relative to the largest |score| (tiny random models)
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 6e-2, "int8": 3e-2}
PRECISIONS = ["fp32", "bf16", "int8"] if DEVICE == "cpu" else ["fp32", "fp16", "bf16"]


def _frame():
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in ("1", "2") for d in DOCS]
    )


def _newer_mice(tokenizer, root, **kw):
    path = os.path.join(root, "mice-newer-em")
    if not os.path.exists(os.path.join(path, "config.json")):
        torch.manual_seed(0)
        MiceModel.from_encoder(
            tiny_encoder("bert", num_hidden_layers=6),
            tokenizer,
            2,
            2,
            interaction="cross_first",
            cls_cross_attention="attend",
            exact_match_heads=True,
        ).save_pretrained(path)
        tokenizer.save_pretrained(path)
    return MiceReranker.from_pretrained(path, **kw)


SYSTEMS = {**FACTORIES, "mice-newer-em-bert": _newer_mice}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("device-models"))


def test_the_device_is_there():
    if DEVICE.startswith("cuda"):
        assert torch.cuda.is_available(), f"MICE_TEST_DEVICE={DEVICE}, but CUDA is not available"
    torch.zeros(1, device=DEVICE)


@pytest.mark.parametrize("dtype", PRECISIONS)
@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_every_reranker_on_the_device_scores_as_fp32_on_cpu(name, dtype, tokenizer, root):
    ref = SYSTEMS[name](tokenizer, root, device="cpu")(_frame()).set_index(["qid", "docno"])["score"]
    got = SYSTEMS[name](tokenizer, root, device=DEVICE, precision=dtype)(_frame()).set_index(["qid", "docno"])["score"]
    assert got.notna().all()
    scale = max(1.0, float(ref.abs().max()))
    np.testing.assert_allclose(got.loc[ref.index], ref, rtol=0, atol=TOLERANCE[dtype] * scale)


@pytest.mark.parametrize("kv", [False, True])
def test_an_index_built_on_the_device_serves_a_cpu_reranker(kv, tokenizer, root, tmp_path):
    corpus = [{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()]
    on_device = SYSTEMS["mice-newer-em-bert"](tokenizer, root, device=DEVICE, batch_size=4)
    index = MiceIndex(str(tmp_path / "idx")).indexer(on_device, kv=kv, storage="fp32").index(corpus)
    cpu = SYSTEMS["mice-newer-em-bert"](tokenizer, root, device="cpu", index=index)
    fly = SYSTEMS["mice-newer-em-bert"](tokenizer, root, device="cpu")
    a = fly(_frame()).set_index(["qid", "docno"])["score"]
    b = cpu(_frame()).set_index(["qid", "docno"])["score"]
    assert cpu.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    np.testing.assert_allclose(b.loc[a.index], a, rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_type", ["cross-encoder", "mice"])
def test_training_steps_on_the_device_in_bf16(model_type, tokenizer, tmp_path):
    from pyterrier_mice import load_reranker
    from pyterrier_mice.training import Group, GroupData, TrainConfig, Trainer, build_reranker

    small = {"cross-encoder": {}, "mice": {"first_interaction_layer": 2, "interaction_layers": 1}}[model_type]
    cfg = TrainConfig.from_dict(
        dict(
            output_dir=str(tmp_path / model_type),
            steps=3,
            batch_size=2,
            lr=1e-3,
            warmup=1,
            save_every=2,
            log_every=0,
            device=DEVICE,
            precision="bf16",
            loss="margin_mse",
            model={"type": model_type, **small},
            eval={"every": 0},
        )
    )
    rr = build_reranker(cfg.model, tokenizer=tokenizer, encoder=tiny_encoder("bert", seed=3), device="cpu")
    docs = [" ".join(t) for t in DOCS.values()]
    data = GroupData(
        [Group(QUERIES[str(1 + i % 5)], [docs[i], docs[i + 1], docs[i + 2]], [3.0, 1.0, 0.5]) for i in range(6)], seed=0
    )
    out = Trainer(cfg, rr, data).train()
    assert out["step"] == 3 and all(np.isfinite(h["loss"]) for h in out["history"] if "loss" in h)
    assert str(next(rr.model.parameters()).device).startswith(DEVICE.split(":")[0])
    reloaded = load_reranker(os.path.join(cfg.output_dir, "final"), device="cpu")
    trained = {k: v.float().cpu() for k, v in rr.model.state_dict().items()}
    for k, v in reloaded.model.state_dict().items():
        torch.testing.assert_close(v.float(), trained[k], rtol=0, atol=0)
