"""The BM25 first stage: one PISA index per corpus, built once under a lock in a shared cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import time

from ..files import cache_dir, locked


def corpus_key(collection) -> str:
    """A file-name-safe key for ``collection``'s corpus and document text: a :class:`BeirFolder`'s
    absolute path with its ``corpus.jsonl``'s size and modification time, or the ir_datasets id
    that provides an :class:`IrdsCollection`'s documents (``msmarco-passage`` for its dev and
    TREC DL sets), plus the text template."""
    irds_id = getattr(collection, "irds_id", None)
    if irds_id is not None:
        import ir_datasets

        try:
            source = ir_datasets.docs_parent_id(irds_id)
        except Exception:  # a stand-in dataset object, or an id ir_datasets does not know
            source = irds_id
        version = ""
    else:
        source = os.path.abspath(collection.path)
        st = os.stat(os.path.join(source, "corpus.jsonl"))
        version = f"{st.st_size}:{st.st_mtime_ns}"  # an edited corpus gets a new index
    template = getattr(collection, "text_template", "")
    digest = hashlib.sha1(f"{source}\0{version}\0{template}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(os.path.normpath(source))).strip("_")
    return f"{slug}-{digest}"


def top_of_run(run, k: int):
    """Each query's ``k`` best documents of a run read from a TREC file, by its scores as trec_eval ranks
    them (score descending, ties by docno descending), never by its rank column (TREC runs count ranks
    from 1, PyTerrier from 0). A score that is not a finite number is refused, naming the row."""
    import numpy as np

    if k < 1:
        raise ValueError(f"k={k}: expected at least 1 candidate per query")
    scores = run["score"].astype("float64")
    bad = ~np.isfinite(scores.to_numpy())
    if bad.any():
        row = run[bad].iloc[0]
        raise ValueError(
            f"the run's score is {row['score']} for qid={row['qid']!r}, docno={row['docno']!r}: not a number"
        )
    ranked = run.assign(score=scores).sort_values(
        ["qid", "score", "docno"], ascending=[True, False, False], kind="stable"
    )
    return ranked.groupby("qid", sort=False).head(k).reset_index(drop=True)


def index_cache_dir() -> str:
    """Where BM25 indexes are kept, shared by every run: ``$PYTERRIER_MICE_CACHE/bm25`` (default
    ``~/.cache/pyterrier_mice/bm25``)."""
    return cache_dir("bm25")


def home_contracted(path: str) -> str:
    """``path`` with the home folder written ``~`` (what is printed names no user's folder)."""
    home = os.path.expanduser("~")
    rel = os.path.relpath(path, home) if os.path.isabs(path) else os.pardir
    return path if rel.startswith(os.pardir) else os.path.join("~", rel)


def bm25(collection, work_dir: str | None = None, num_results: int = 1000):
    """PISA BM25 over ``collection`` (anything with ``path``/``irds_id`` and ``get_corpus_iter``),
    indexing it the first time, under ``work_dir`` (default: :func:`index_cache_dir`)."""
    from pyterrier_pisa import PisaIndex

    work_dir = work_dir or index_cache_dir()
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, f"bm25-{corpus_key(collection)}.pisa")
    index = PisaIndex(path, text_field="text")
    with locked(path):  # two runs on one corpus: one builds, the other waits and reuses
        if not index.built():
            refuse_empty_texts(collection)
            start = time.time()
            print(f"indexing {collection!r} with PISA (BM25) into {home_contracted(work_dir)} ...", end=" ", flush=True)
            with native_output_captured():
                index.index(collection.get_corpus_iter())
            print(f"done in {time.time() - start:.0f} s", flush=True)
    with native_output_captured():  # PISA compresses the index for BM25 on first use
        return index.bm25(num_results=num_results)


def refuse_empty_texts(collection) -> None:
    """Refuse a local collection whose every document text is empty (PISA aborts the process on it)."""
    if getattr(collection, "irds_id", None) is not None:
        return  # an ir_datasets collection: not read twice
    texts = collection.texts()
    if not any(isinstance(t, str) and t.strip() for t in texts.values()):
        raise ValueError(
            f"{collection!r}: all {len(texts)} documents have an empty text, so BM25 has nothing to index; "
            "check the corpus (each line of corpus.jsonl needs a 'text' or 'title')"
        )


@contextlib.contextmanager
def native_output_captured():
    """Capture what native code (PISA's logger) writes to the process's stdout/stderr; it is shown
    only if the block fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            log.seek(0)
            sys.stderr.write(log.read().decode("utf8", "replace")[-4000:])
            raise
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
