"""The tools a user would re-rank with instead of this package, on the same weights and inputs:
sentence-transformers' ``CrossEncoder.predict``, and PyLate's ColBERT.

Each builder takes the folder this benchmark saved a model to and returns ``(score, model)``:
``score(frame)`` re-ranks one query's candidates from their raw text (tokenisation included, as
for this package's re-rankers) and returns the scores in the frame's row order.

PyLate's ColBERT runs as sentence-transformers' ``MultiVectorEncoder``, which is PyLate's model
carried into sentence-transformers 6 (it loads PyLate's checkpoint layout, which
:func:`save_colbert` writes). The ``pylate`` package itself cannot be installed beside this
package: every release pins an older stack (1.6.0: transformers ≤ 5.3, torch 2.11,
sentence-transformers 5.3) and, installed without its pins, calls sentence-transformers APIs that
version 6 renamed. Install the peers with ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

PEERS = {
    # system → (label, peer of which of this package's systems)
    "st-cross-encoder": ("sentence-transformers CrossEncoder.predict (same weights)", "cross-encoder"),
    "st-cross-encoder-l6": ("sentence-transformers CrossEncoder.predict, 6 layers", "cross-encoder-l6"),
    "pylate-colbert": ("PyLate ColBERT (MultiVectorEncoder), encode + MaxSim (same weights)", "colbert"),
}

INSTALL = 'pip install -e ".[bench]"'


def missing() -> str | None:
    """None when the peers can run here, else the command that installs them."""
    try:
        from sentence_transformers import CrossEncoder, MultiVectorEncoder  # noqa: F401
    except ImportError:
        return INSTALL
    return None


def save_cross_encoder(model, tokenizer, folder: str) -> None:
    """A cross-encoder of this package saved as the plain HF sequence-classification folder a
    sentence-transformers ``CrossEncoder`` loads."""
    model.encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def save_colbert(model, tokenizer, folder: str) -> None:
    """A ColBERT of this package saved as PyLate saves one (its backbone, ``modules.json`` with
    PyLate's ``Dense`` projection, and PyLate's ``config_sentence_transformers.json``: the
    ``[unused0]``/``[unused1]`` markers, query and document lengths, query expansion with ``[MASK]``
    attended as in ColBERT's standard form, and no skiplist)."""
    from safetensors.torch import save_file

    cfg = model.config
    model.backbone.base.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    weight = model.projection.weight.detach().contiguous()
    dense = os.path.join(folder, "1_Dense")
    os.makedirs(dense, exist_ok=True)
    save_file({"linear.weight": weight}, os.path.join(dense, "model.safetensors"))
    files = {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        ],
        "sentence_bert_config.json": {"max_seq_length": cfg.doc_max_length, "do_lower_case": False},
        "1_Dense/config.json": {
            "in_features": weight.shape[1],
            "out_features": weight.shape[0],
            "bias": False,
            "activation_function": "torch.nn.modules.linear.Identity",
            "use_residual": False,
        },
        "config_sentence_transformers.json": {
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "MaxSim",
            "query_prefix": cfg.query_marker,
            "document_prefix": cfg.doc_marker,
            "query_length": cfg.query_max_length,
            "document_length": cfg.doc_max_length,
            "attend_to_expansion_tokens": cfg.input_form == "standard",
            "skiplist_words": [],  # this package's ColBERT scores every document token (PyLate: punctuation skipped)
            "do_query_expansion": True,
        },
    }
    for name, content in files.items():
        with open(os.path.join(folder, name), "w") as f:
            json.dump(content, f, indent=2)


def st_cross_encoder(folder: str, batch_size: int, max_length: int, device: str = "cpu"):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(folder, device=device, max_length=max_length, activation_fn=torch.nn.Identity())

    def score(df):
        pairs = list(zip(df["query"], df["text"]))
        return np.asarray(model.predict(pairs, batch_size=batch_size, show_progress_bar=False))

    return score, model


def pylate_colbert(folder: str, batch_size: int, device: str = "cpu"):
    """PyLate's ColBERT (a checkpoint in PyLate's layout, see :func:`save_colbert`) as
    sentence-transformers' ``MultiVectorEncoder`` runs it: ``encode_query``, ``encode_document``,
    then MaxSim (``similarity``) of the query against each candidate."""
    from sentence_transformers import MultiVectorEncoder

    model = MultiVectorEncoder(folder, device=device)
    model.eval()

    def score(df):
        queries = df["query"].unique()
        if len(queries) != 1:
            raise ValueError("the ColBERT peer re-ranks one query's candidates at a time")
        q = model.encode_query(list(queries), batch_size=batch_size, show_progress_bar=False)
        d = model.encode_document(list(df["text"]), batch_size=batch_size, show_progress_bar=False)
        return model.similarity(q, d)[0].float().cpu().numpy()

    return score, model
