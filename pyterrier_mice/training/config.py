"""Training configuration: YAML ↔ dataclasses, with ``key.sub=value`` overrides."""
from __future__ import annotations

import dataclasses
from typing import Any

import yaml


@dataclasses.dataclass
class ModelConfig:
    type: str = "mice"                    # cross-encoder | mice | colbert | prettr
    backbone: str = "microsoft/MiniLM-L12-H384-uncased"
    policy: str = "full"                  # cross-encoder only
    first_interaction_layer: int = 4      # mice
    interaction_layers: int | None = 3    # mice (None: all remaining)
    reference_compat: bool = False        # mice
    split_layer: int = 4                  # prettr
    doc_position_offset: int | None = None  # prettr (fixed offset → precomputable)
    dim: int = 128                        # colbert
    query_length: int = 32                # colbert
    doc_length: int = 180                 # colbert
    input_form: str = "reference"         # colbert: standard | reference
    max_length: int | None = None         # cross-encoder / prettr joint pair length
    query_max_length: int | None = None   # mice
    doc_max_length: int | None = None     # mice


@dataclasses.dataclass
class DataConfig:
    kind: str = "beir"                    # beir | msmarco-teacher
    path: str = ""                        # BEIR folder, or the teacher-score TSV
    split: str = "train"
    bm25_k: int = 100                     # negatives mined from BM25 top-k (beir)
    negatives: int = 1                    # negatives per positive
    teacher: str | None = None            # re-ranker checkpoint giving teacher scores (beir)
    teacher_kind: str = "cross-encoder"
    limit: int | None = None              # msmarco-teacher: first N triples (paper: 4M)


@dataclasses.dataclass
class EvalConfig:
    path: str | None = None               # BEIR folder of the validation queries (default: data.path)
    split: str = "dev"                    # a qrels split, or "holdout": a fraction of data.split's queries
    holdout: float = 0.2                  # with split "holdout": the fraction held out from training
    k: int = 100                          # re-rank BM25 top-k
    measure: str = "RR@10"
    every: int = 10000                    # steps between validations (0: never)
    batch_size: int = 64


@dataclasses.dataclass
class TrainConfig:
    output_dir: str = "runs/train"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    loss: str = "margin_mse"              # margin_mse | bce | infonce
    steps: int = 125_000
    batch_size: int = 32                  # groups (triples) per step
    lr: float = 7e-6
    weight_decay: float = 0.0
    warmup: int = 5_000
    max_grad_norm: float = 1.0
    precision: str = "no"                 # no | bf16 | fp16 (accelerate mixed precision)
    seed: int = 12
    save_every: int = 10_000              # steps between resumable checkpoints
    device: str | None = None             # None: accelerate's choice
    log_every: int = 100

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}; known: {sorted(known)}")
        sub = {"model": ModelConfig, "data": DataConfig, "eval": EvalConfig}
        for key, klass in sub.items():
            value = d.get(key) or {}
            names = {f.name for f in dataclasses.fields(klass)}
            bad = set(value) - names
            if bad:
                raise ValueError(f"unknown keys in '{key}': {sorted(bad)}; known: {sorted(names)}")
            d[key] = klass(**value)
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str, overrides: list[str] = ()) -> "TrainConfig":
        with open(path, encoding="utf8") as f:
            d = yaml.safe_load(f) or {}
        for item in overrides:
            key, _, value = item.partition("=")
            if not _:
                raise ValueError(f"override {item!r} is not key=value")
            node = d
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = yaml.safe_load(value)
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
