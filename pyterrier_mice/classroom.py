"""Preparing machines to run the tutorials offline (a classroom, a laptop on a train): while online,
fetch the hub models and the ir_datasets collections into their caches and build the BM25 indexes;
afterwards everything runs with ``HF_HUB_OFFLINE=1``. ``pyterrier-mice prefetch`` runs it."""

from __future__ import annotations

import os
import time

#: what the tutorials' full setting (``MICE_TUTORIAL=full``) reads: the hub's cross-encoder, the
#: bi-encoder the recipe distils from, the base model MICE is trained from, and the authors' MICE
MODELS = (
    "cross-encoder/ms-marco-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
    "microsoft/MiniLM-L12-H384-uncased",
    "xpmir/Mice-P-130m",
)
#: the collection of the full setting (TREC DL 2019 on MS MARCO passages is ~3 GB more: name it to fetch it)
DATASETS = ("irds:beir/scifact/test",)


def cache_locations() -> dict[str, str]:
    """Where each cache lives (set these variables to share one folder between users)."""
    from huggingface_hub import constants

    from .evaluation.retrieval import index_cache_dir
    import ir_datasets

    return {
        "HF_HOME (hub models)": constants.HF_HOME,
        "IR_DATASETS_HOME (collections)": str(ir_datasets.util.home_path()),
        "PYTERRIER_MICE_CACHE (BM25 indexes)": os.path.dirname(index_cache_dir()),
    }


def prefetch_model(repo_id: str) -> str:
    """Download a hub model's files into the hub cache; one line saying where, or raises with one line."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        path = huggingface_hub.snapshot_download(repo_id)
    except RepositoryNotFoundError:
        raise FileNotFoundError(
            f"{repo_id}: the hub has no such repository (check the id, or log in with "
            "`hf auth login` for a private one)"
        ) from None
    except LocalEntryNotFoundError:
        raise ConnectionError(
            f"{repo_id}: the hub could not be reached (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}"
            "); prefetch while online"
        ) from None
    return f"{repo_id}: in the hub cache ({path})"


def prefetch_dataset(spec: str, index: bool = True) -> str:
    """Fetch an ``irds:`` collection's queries, qrels and documents (and build its BM25 index)."""
    from .evaluation.datasets import BeirFolder, dataset_path
    from .evaluation.experiment import open_dataset
    from .evaluation.retrieval import bm25

    if not spec.startswith("irds:"):
        folder = dataset_path(spec)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{spec}: neither an ir_datasets id (irds:<id>) nor a folder")
        if index:
            bm25(BeirFolder(folder), num_results=10)
        return f"{spec}: a local folder, nothing to fetch" + (", BM25 index built" if index else "")
    ds = open_dataset(spec)
    texts = ds.collection.texts()
    first = next(iter(ds.collection.get_corpus_iter()))  # downloads the documents
    texts.get(first["docno"])  # builds the docstore that pt.text.get_text reads
    if index:
        bm25(ds.collection, num_results=10)
    return f"{spec}: {len(ds.topics)} queries, {len(ds.qrels)} judgements and the documents cached" + (
        ", BM25 index built" if index else ""
    )


def prefetch(models=MODELS, datasets=DATASETS, index: bool = True) -> int:
    """Prefetch every model and dataset, one line each; returns how many failed (the others are done)."""
    failed = 0
    for what, fn in [
        *((m, lambda m=m: prefetch_model(m)) for m in models),
        *((d, lambda d=d: prefetch_dataset(d, index)) for d in datasets),
    ]:
        start = time.time()
        try:
            print(f"{fn()} [{time.time() - start:.0f} s]", flush=True)
        except Exception as e:  # noqa: BLE001  (one line per item; the others still run)
            failed += 1
            print(f"{what}: NOT fetched: {str(e).splitlines()[0] if str(e) else type(e).__name__}", flush=True)
    print("caches: " + "; ".join(f"{k} {v}" for k, v in cache_locations().items()), flush=True)
    if not failed:
        print("done: run the tutorials with HF_HUB_OFFLINE=1 (and MICE_TUTORIAL=full for these models)", flush=True)
    return failed
