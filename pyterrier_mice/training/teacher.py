"""Teacher scores for distillation, computed once and cached on disk next to the run (resumable
chunk by chunk, keyed by the teacher's fingerprint and the pairs)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

import numpy as np

from ..files import cache_dir, locked, save_npy, write_text
from ..progress import bar

CHUNK = 256


def pairs_digest(queries: list[str], docs: list[str]) -> str:
    h = hashlib.sha256()
    for q, d in zip(queries, docs):
        h.update(q.encode("utf8", "surrogatepass") + b"\0" + d.encode("utf8", "surrogatepass") + b"\1")
    return h.hexdigest()


def teacher_scores(
    teacher, teacher_path: str, queries: list[str], docs: list[str], cache_dir: str, verbose: bool = True
) -> np.ndarray:
    """Scores of the aligned pairs by ``teacher`` (a re-ranker loaded from ``teacher_path``), from
    ``cache_dir`` when already computed, else computed chunk by chunk (resumable) with progress."""
    from ..evaluation.experiment import checkpoint_fingerprint

    key = hashlib.sha256(
        json.dumps(
            [
                checkpoint_fingerprint(teacher_path),
                type(teacher).__name__,
                [str(x) for x in teacher._config_key()[1:]],
                pairs_digest(queries, docs),
            ]
        ).encode()
    ).hexdigest()[:16]
    os.makedirs(cache_dir, exist_ok=True)
    final = os.path.join(cache_dir, f"teacher-{key}.npy")
    if not os.path.exists(final):
        # two runs needing the same pairs at once (variants of one comparison): one scores, the other waits
        with locked(final):
            if not os.path.exists(final):
                _score_into(final, teacher, queries, docs, verbose)
                return np.load(final)
    scores = np.load(final)
    if verbose:
        print(f"teacher scores of {len(scores)} pairs read from {final}", flush=True)
    return scores


def _score_into(final: str, teacher, queries: list[str], docs: list[str], verbose: bool) -> None:
    """Score the pairs chunk by chunk into ``final`` (resuming where a killed scoring stopped)."""
    partial, done_file = final[:-4] + ".partial", final[:-4] + ".done"
    n = len(queries)
    scores = np.lib.format.open_memmap(
        partial, mode="r+" if os.path.exists(partial) else "w+", dtype=np.float32, shape=(n,)
    )
    done = int(open(done_file).read()) if os.path.exists(done_file) else 0
    progress = bar(total=n, initial=done, desc="teacher scores", unit="pair") if verbose else None
    if verbose and done:
        print(f"resuming teacher scoring at pair {done} of {n}", flush=True)
    truncation = teacher.collect_truncation() if hasattr(teacher, "collect_truncation") else contextlib.nullcontext()
    embeddings = (  # a bi-encoder embeds each distinct text once, kept in the shared cache for later runs
        teacher.cached_embeddings(os.path.join(cache_dir("teacher-embeddings"), f"{teacher.cache_key()}.npz"))
        if hasattr(teacher, "cached_embeddings")
        else contextlib.nullcontext()
    )
    with truncation, embeddings:  # one truncation warning for the whole scoring, not one per chunk
        while done < n:
            end = min(n, done + CHUNK)
            scores[done:end] = teacher.score_pairs(queries[done:end], docs[done:end])
            scores.flush()
            write_text(done_file, str(end))
            if progress is not None:
                progress.update(end - done)
            done = end
    if progress is not None:
        progress.close()
    result = np.array(scores)
    del scores
    save_npy(final, result)
    os.remove(partial)
    os.remove(done_file)
