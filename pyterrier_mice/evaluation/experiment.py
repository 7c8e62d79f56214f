"""The paper's re-ranking experiment as a library: datasets, BM25 top-k, re-rankers, saved runs and
the table with significance marks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

import pandas as pd
import pyterrier as pt
from pyterrier.measures import AP, RR, nDCG

from ..files import atomic_path, write_json
from ..models.prior import sharing_embeddings
from ..rerankers.fusion import fuse_runs
from .datasets import BeirFolder, IrdsCollection, dataset_path
from .retrieval import bm25, corpus_key
from .splits import check_model_not_validated_on

# (ir_datasets id, the paper's column, the BEIR folder name) in the paper's column order.
PAPER_DATASETS = [
    ("msmarco-passage/dev/small", "MSM", None),
    ("msmarco-passage/trec-dl-2019/judged", "DL19", None),
    ("msmarco-passage/trec-dl-2020/judged", "DL20", None),
    ("beir/arguana", "Ar", "arguana"),
    ("beir/climate-fever", "CF", "climate-fever"),
    ("beir/dbpedia-entity/test", "DB", "dbpedia-entity"),
    ("beir/fever/test", "FE", "fever"),
    ("beir/fiqa/test", "Fi", "fiqa"),
    ("beir/hotpotqa/test", "HPQ", "hotpotqa"),
    ("beir/nfcorpus/test", "NFC", "nfcorpus"),
    ("beir/nq", "NQ", "nq"),
    ("beir/quora/test", "Q", "quora"),
    ("beir/scidocs", "SD", "scidocs"),
    ("beir/scifact/test", "SF", "scifact"),
    ("beir/webis-touche2020/v2", "T-v2", "webis-touche2020"),
    ("beir/trec-covid", "T-C", "trec-covid"),
]
COLUMN_ORDER = [abbrev for _, abbrev, _ in PAPER_DATASETS]
IN_DOMAIN = ["MSM", "DL19", "DL20"]
BEIR13 = COLUMN_ORDER[3:]
# The BEIR sets on which BM25 beats the fine-tuned MiniLM cross-encoder in the paper's Table 1
# (Ar 30.0 vs 14.8, CF 16.5/15.7, NFC 32.2/27.1, SD 14.0/12.5, SF 67.9/55.3, T-v2 45.4/29.9):
# where lexical matching is hard to beat, and where the masks and MICE gain most.
BM25_HARD = ["Ar", "CF", "NFC", "SD", "SF", "T-v2"]
PAPER_GROUPS = {"ID": IN_DOMAIN, "OOD": BEIR13, "BM25-hard": BM25_HARD}


def dataset_label(spec: str) -> str:
    """The paper's column for an ``irds:`` id or a BEIR folder named like BEIR's (``scifact`` →
    ``SF``); otherwise the id or the folder's name."""
    name = spec[len("irds:") :] if spec.startswith("irds:") else spec
    for irds_id, abbrev, folder in PAPER_DATASETS:
        if name == irds_id:
            return abbrev
    base = os.path.basename(os.path.normpath(name)).lower()
    for _, abbrev, folder in PAPER_DATASETS:
        if folder is not None and base == folder:
            return abbrev
    return name if spec.startswith("irds:") else os.path.basename(os.path.normpath(name))


def is_paper_dataset(label: str) -> bool:
    return label in COLUMN_ORDER


def table_groups(labels: list[str], extra: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The averages to print for the datasets ``labels``: ID (the paper's three in-domain sets),
    OOD (the paper's 13 BEIR sets), BM25-hard (:data:`BM25_HARD`), each only when at least two
    of its members were run (an average of one dataset is that dataset), then the user's ``extra``
    groups. Datasets that are not the paper's are in no paper average. A partial group keeps its
    full member list, so the table says how many of them its average covers."""
    groups = {name: members for name, members in PAPER_GROUPS.items() if sum(m in labels for m in members) >= 2}
    groups.update({name: members for name, members in (extra or {}).items() if any(m in labels for m in members)})
    return groups


def paper_order(labels: list[str]) -> list[str]:
    """``labels`` in the paper's column order, other datasets after them in the given order."""
    known = [c for c in COLUMN_ORDER if c in labels]
    return known + [lb for lb in labels if lb not in COLUMN_ORDER]


@dataclasses.dataclass
class Dataset:
    label: str
    collection: object  # BeirFolder or IrdsCollection: get_corpus_iter, text_loader, path
    topics: pd.DataFrame
    qrels: pd.DataFrame


def open_dataset(spec: str, split: str = "test") -> Dataset:
    """A local BEIR-layout folder (its ``split`` qrels) or ``irds:<id>`` (document text built per
    dataset as the reference implementation does); ``cranfield`` names the bundled collection."""
    spec = dataset_path(spec)
    if os.path.isdir(spec):
        coll = BeirFolder(spec)
        return Dataset(dataset_label(spec), coll, coll.get_topics(split), coll.get_qrels(split))
    if not spec.startswith("irds:"):
        parent, last = os.path.split(spec.rstrip("/"))
        folder = dataset_path(parent) if parent else ""
        if folder and os.path.isdir(os.path.join(folder, "qrels")):  # "cranfield/train": a folder and a split
            raise FileNotFoundError(
                f"dataset {spec!r}: not a folder; a split of a folder is an argument: "
                f"open_dataset({parent!r}, split={last!r})"
            )
        raise FileNotFoundError(f"dataset {spec!r}: not a folder; use a BEIR-layout folder or irds:<ir_datasets id>")
    coll = IrdsCollection(spec)  # not cached and not downloadable: one line (DatasetUnavailable)
    return Dataset(dataset_label(spec), coll, coll.get_topics(), coll.get_qrels())


def open_datasets(specs, split: str = "test") -> list[Dataset]:
    """:func:`open_dataset` for each spec, every label distinct: a dataset whose label an earlier one
    took (``irds:beir/scifact/test`` and a folder ``scifact`` are both ``SF``) is labelled by its spec
    too, so that the two are two columns of a table, never one."""
    out, seen = [], set()
    for spec in specs:
        ds = open_dataset(spec, split)
        if ds.label in seen:
            ds = dataclasses.replace(ds, label=f"{ds.label} ({spec})")
        seen.add(ds.label)
        out.append(ds)
    return out


def _record_name(path: str, name: str, what) -> None:
    """The names a saved run was produced or reused under, for humans reading ``runs/``."""
    info = {"names": [], "identity": [str(w) for w in what]}
    if os.path.exists(path):
        with open(path) as f:
            info = json.load(f)
    if name not in info["names"]:
        info["names"].append(name)
        write_json(path, info)


def checkpoint_fingerprint(path: str) -> str:
    """What identifies a checkpoint's weights: a local folder's config and weight files (name,
    size, modification time), or the hub id itself."""
    if not os.path.isdir(path):
        return path
    parts = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name == "config.json":
            parts.append(open(full, encoding="utf8").read())
        elif name.endswith((".safetensors", ".bin", ".pt")):
            st = os.stat(full)
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return os.path.abspath(path) + "\0" + "\0".join(parts)


def system_identity(reranker, checkpoint: str, *extra) -> tuple:
    """What determines a re-ranker's run: its kind, its checkpoint's fingerprint, ``extra`` (e.g.
    how a variant was derived from that checkpoint) and its settings (policy, lengths, dtype)."""
    return (type(reranker).__name__, checkpoint_fingerprint(checkpoint), *extra, reranker._config_key()[1:])


def run_key(*what) -> str:
    """A saved run's file name: a hash of everything that produced it, not of the name it was given
    (so the same system under two names shares one run, and two systems never share one)."""
    return hashlib.sha1(json.dumps([str(w) for w in what]).encode()).hexdigest()[:16]


def saved_fusions(paths: dict[str, str], first_stage: str = "BM25") -> dict[str, tuple[str, dict]]:
    """For each system (name → checkpoint) whose checkpoint holds the fusion weight its training chose
    on validation queries (``fusion.json``), the fused system ``NAME + BM25`` (``NAME#i`` repetitions
    keep their number), as :func:`rerank_experiment` takes ``fusions``; the others are said and skipped."""
    from ..rerankers.fusion import FUSION_FILE, read_fusion_file

    fusions = {}
    for name, path in paths.items():
        file = os.path.join(path, FUSION_FILE)
        if not os.path.exists(file):
            print(
                f"fusion: {name} ({path}) has no {FUSION_FILE} (only a model trained with validation queries has "
                "one), so it is not fused",
                flush=True,
            )
            continue
        saved = read_fusion_file(path)
        base, _, rep = name.partition("#")
        fusions[f"{base} + {first_stage}" + (f"#{rep}" if rep else "")] = (
            name,
            {key: saved[key] for key in ("weight", "normalise", "depth") if key in saved},
        )
    return fusions


def rerank_experiment(
    ds: Dataset,
    systems: dict[str, tuple[pt.Transformer, tuple]],
    *,
    k: int,
    work: str,
    measures=(nDCG @ 10, RR @ 10, AP),
    verbose: bool = True,
    fusions: dict[str, tuple[str, dict]] | None = None,
) -> pd.DataFrame:
    """BM25 top-``k`` and BM25 top-``k`` → each re-ranker of ``systems`` (name → (re-ranker, what
    identifies it)) on ``ds``, as ``pt.Experiment(perquery=True)``: every system ranks the same
    ``k`` candidates per query, so the comparison is at one depth. Runs are saved as TREC files
    under ``work/<dataset>/runs`` keyed by identity, ``k``, corpus and topics (a JSON beside each
    names the systems that used it), and reused when present.

    ``fusions`` (name → (a name of ``systems``, ``{weight, normalise, depth}``)) adds that system's
    scores interpolated with BM25's (see :class:`~pyterrier_mice.ScoreFusion`), computed from the two
    runs: the re-ranker does not run again."""
    ds_work = os.path.join(work, re.sub(r"[^A-Za-z0-9.+-]+", "_", ds.label))
    runs_dir = os.path.join(ds_work, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    first = bm25(ds.collection, os.path.join(work, "indexes"), num_results=k)
    get_text = pt.text.get_text(ds.collection, "text")
    topics_id = hashlib.sha1(
        pd.util.hash_pandas_object(ds.topics[["qid", "query"]], index=False).values.tobytes()
    ).hexdigest()
    corpus_id = corpus_key(ds.collection)
    runs = []
    pipelines = {"BM25": (first, ("bm25-pisa",))}
    for name, (rr, what) in systems.items():
        folder = getattr(rr, "model_name", None)
        if isinstance(folder, str) and os.path.isdir(folder):  # never evaluated on the queries it was chosen on
            check_model_not_validated_on(folder, ds.topics, name)
        rr.verbose = verbose  # a progress bar per system
        pipelines[name] = (first >> get_text >> rr, what)
    with sharing_embeddings():  # models keeping the same cosine (a CE, the MICE derived from it) embed once
        for name, (pipeline, what) in pipelines.items():
            key = run_key(*what, f"k={k}", corpus_id, topics_id)
            path = os.path.join(runs_dir, key + ".res.gz")
            if os.path.exists(path):
                run = pt.io.read_results(path)
            else:
                if verbose:
                    print(f"[{ds.label}] running {name}: {len(ds.topics)} queries × BM25 top-{k}", flush=True)
                run = pipeline(ds.topics)
                with atomic_path(path) as tmp:
                    pt.io.write_results(run, tmp, format="trec")
            _record_name(os.path.join(runs_dir, key + ".json"), name, what)
            runs.append(run)
    names = list(pipelines)
    for name, (source, settings) in (fusions or {}).items():
        runs.append(fuse_runs(runs[0], runs[names.index(source)], **settings))
        names.append(name)
    res = pt.Experiment(runs, ds.topics, ds.qrels, list(measures), names=names, perquery=True)
    order = {name: i for i, name in enumerate(names)}  # systems in the order given
    return res.sort_values("name", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
