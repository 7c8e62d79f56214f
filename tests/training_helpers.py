"""Shared builders of the training tests: tiny groups, configs and re-rankers."""

import yaml

from pyterrier_mice.training import (
    Group,
    GroupData,
    TrainConfig,
    build_reranker,
)

from conftest import tiny_encoder


SMALL = {
    "cross-encoder": {},
    "mice": {"first_interaction_layer": 2, "interaction_layers": 1},
    "colbert": {"dim": 16, "query_max_length": 8, "doc_max_length": 32},
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
