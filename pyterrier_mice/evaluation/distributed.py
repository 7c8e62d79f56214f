"""Re-ranking a large run across processes: the queries cut into shards of a fixed number of
queries, dealt to the ranks that ``torchrun`` / ``accelerate launch`` start (or to one process),
each shard written as a TREC run atomically, and the shards merged in order into one run. The merged
run is the same, byte for byte, whatever the number of processes; a rerun skips finished shards."""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd

from ..files import atomic_file, locked, write_json

IDENTITY = "identity.json"


def launcher_rank() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment of ``torchrun`` / ``accelerate launch``."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def shard_path(out: str, shard: int, total: int) -> str:
    return os.path.join(out + ".shards", f"shard-{shard:05d}-of-{total:05d}.trec")


def rerank_sharded(
    reranker,
    candidates: pd.DataFrame,
    out: str,
    identity: dict,
    *,
    shard_queries: int = 50,
    tag: str = "pyterrier-mice",
    overwrite: bool = False,
    verbose: bool = True,
    wait_s: float = 86400.0,
) -> dict:
    """Re-rank ``candidates`` (``qid``, ``query``, ``docno``, ``text``) with ``reranker`` into the TREC run
    ``out``, this process's shards only under a launcher (then the ranks meet and rank 0 merges).

    ``identity`` says what produced the shards (the model, the candidates); shards of another run in
    ``out.shards`` are an error unless ``overwrite``. Returns what this process did:
    ``{"shards": n, "done": [...], "skipped": [...], "merged": bool}``.

    ``wait_s`` bounds how long a rank that finished its shards waits for the others (the process
    group's timeout; torch's default, 10–30 minutes, is too short for uneven shards of a large run).
    """
    rank, world, local = launcher_rank()
    if shard_queries < 1:
        raise ValueError(f"shard_queries={shard_queries}; expected ≥ 1")
    if not wait_s > 0:
        raise ValueError(f"wait_s={wait_s}; expected seconds > 0")
    _start_group(world, local, wait_s)
    missing = [c for c in ("qid", "query", "docno", "text") if c not in candidates.columns]
    if missing:
        raise KeyError(f"candidates need the columns {missing} (qid, query, docno, text)")
    qids = sorted(candidates["qid"].astype(str).unique())
    shards = [qids[i : i + shard_queries] for i in range(0, len(qids), shard_queries)]
    folder = out + ".shards"
    identity = {
        **identity,
        "shard_queries": shard_queries,
        "queries": len(qids),
        "candidates": _candidates_digest(candidates),
    }
    if rank == 0:
        _claim(folder, identity, overwrite)
    _barrier(world)
    _check_identity(folder, identity)
    by_qid = candidates.assign(qid=candidates["qid"].astype(str))
    done, skipped = [], []
    for s, shard_qids in enumerate(shards):
        if s % world != rank:
            continue
        path = shard_path(out, s, len(shards))
        if os.path.exists(path):
            skipped.append(s)
            continue
        result = reranker(by_qid[by_qid["qid"].isin(shard_qids)])
        _write_trec(result, path, tag)
        done.append(s)
        if verbose:
            print(f"rank {rank}: shard {s + 1} of {len(shards)} written ({len(shard_qids)} queries)", flush=True)
    _barrier(world)
    merged = False
    if rank == 0:
        merged = _merge(out, [shard_path(out, s, len(shards)) for s in range(len(shards))])
    _barrier(world)
    return {"shards": len(shards), "done": done, "skipped": skipped, "merged": merged}


def _candidates_digest(candidates: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for col in ("qid", "query", "docno", "text"):
        h.update(pd.util.hash_pandas_object(candidates[col].astype(str), index=False).values.tobytes())
    return h.hexdigest()[:16]


def _claim(folder: str, identity: dict, overwrite: bool) -> None:
    """Record what the shards of ``folder`` come from (refusing shards of another run)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, IDENTITY)
    if os.path.exists(path):
        with open(path, encoding="utf8") as f:
            saved = json.load(f)
        if saved == identity:
            return
        if not overwrite:
            changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
            raise ValueError(
                f"{folder} holds shards of another run (it differs in {changed}); pass --overwrite to "
                "discard them, or write the run elsewhere"
            )
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
    write_json(path, identity, sort_keys=True)


def _check_identity(folder: str, identity: dict) -> None:
    with open(os.path.join(folder, IDENTITY), encoding="utf8") as f:
        if json.load(f) != identity:
            raise ValueError(f"{folder}: the ranks disagree on what they re-rank (model or candidates)")


def _write_trec(result: pd.DataFrame, path: str, tag: str) -> None:
    """One shard's ranking as TREC lines (ranks from 0, as PyTerrier writes them), sorted by query then
    rank, written whole."""
    result = result.sort_values(["qid", "rank"], kind="stable")
    lines = [
        f"{q} Q0 {d} {int(r)} {float(s)!r} {tag}\n"
        for q, d, r, s in zip(result["qid"], result["docno"], result["rank"], result["score"])
    ]
    with atomic_file(path) as f:
        f.writelines(lines)


def _merge(out: str, paths: list[str]) -> bool:
    """Concatenate the shards, in order, into ``out`` (written whole); False if a shard is missing."""
    with locked(out):
        if not all(os.path.exists(p) for p in paths):
            return False
        with atomic_file(out) as dst:
            for p in paths:
                with open(p, encoding="utf8") as src:
                    dst.write(src.read())
    return True


def _start_group(world: int, local_rank: int, wait_s: float) -> None:
    """The ranks' process group (NCCL on this rank's GPU when CUDA is there, else gloo), waiting up to
    ``wait_s`` seconds at a barrier."""
    if world <= 1:
        return
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", timeout=timedelta(seconds=wait_s), device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo", timeout=timedelta(seconds=wait_s))


def _barrier(world: int) -> None:
    """Wait for every rank."""
    if world <= 1:
        return
    import torch.distributed as dist

    dist.barrier()
