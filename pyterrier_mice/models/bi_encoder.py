"""Sentence-embedding models (bi-encoders) in sentence-transformers' layout, run by
sentence-transformers itself: every module of the model (pooling, dense layers, normalisation,
prompts) as that library runs it.

A base encoder such as all-MiniLM-L6-v2 was trained to be one, so its similarity is a zero-shot
re-ranker and a teacher for a cross-encoder trained from the same weights."""

from __future__ import annotations

import json
import os

from .checkpoints import hub_files, local_or_hub

MODULES = "modules.json"


def _modules(path: str) -> list | None:
    """The module list of a sentence-transformers checkpoint (a local folder or hub id), or None."""
    if os.path.isdir(path):
        full = os.path.join(path, MODULES)
        if not os.path.exists(full):
            return None
    else:
        if MODULES not in hub_files(path):
            return None
        from huggingface_hub import hf_hub_download

        full = hf_hub_download(path, MODULES)
    try:
        with open(full, encoding="utf8") as f:
            modules = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}/{MODULES} is not valid JSON ({e})") from None
    return modules if isinstance(modules, list) else None


def is_bi_encoder(name_or_path) -> bool:
    """Whether a checkpoint is a sentence-embedding model in sentence-transformers' layout (its
    ``modules.json`` pools token embeddings into one vector)."""
    try:
        modules = _modules(local_or_hub(name_or_path))
    except (OSError, ValueError):
        return False
    return bool(modules) and any(str(m.get("type", "")).rsplit(".", 1)[-1] == "Pooling" for m in modules)


def pairwise_similarity(model, q, d, qidx, didx):
    """``model``'s similarity of query embeddings ``q[qidx[i]]`` and document embeddings ``d[didx[i]]``,
    one per pair (never a full matrix), as a float32 tensor."""
    import numpy as np
    import torch

    qi, di = torch.as_tensor(np.asarray(qidx), device=q.device), torch.as_tensor(np.asarray(didx), device=d.device)
    out = [model.similarity_pairwise(q[qi[s : s + 4096]], d[di[s : s + 4096]]).float() for s in range(0, len(qi), 4096)]
    return torch.cat(out) if out else torch.zeros(0, device=q.device)


def embedded_once(texts: list[str], key, store: dict, encode) -> list:
    """The rows of ``encode(texts)``, each distinct ``key(text)`` encoded once and kept in ``store``
    (read from it when there)."""
    keys = [key(t) for t in texts]
    todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in store))
    if todo:
        for text, vector in zip(todo, encode(todo)):
            store[key(text)] = vector
    return [store[k] for k in keys]


def load_sentence_transformer(name_or_path, device=None):
    """The ``SentenceTransformer`` at ``name_or_path`` (a folder or hub id), refusing in one line a
    checkpoint that is no sentence-embedding model."""
    path = local_or_hub(name_or_path)
    if not is_bi_encoder(path):
        raise ValueError(
            f"{os.fspath(name_or_path)!r} is not a sentence-embedding model (no {MODULES} with a Pooling module, "
            "sentence-transformers' layout); a cross-encoder loads with CrossEncoderReranker"
        )
    from sentence_transformers import SentenceTransformer

    from .base import quiet_transformers

    with quiet_transformers():
        return SentenceTransformer(path, device=str(device) if device is not None else "cpu", trust_remote_code=False)
