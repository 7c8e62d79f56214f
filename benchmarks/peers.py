"""The tools a user would re-rank with instead of this package, on the same weights and inputs:
sentence-transformers' ``CrossEncoder.predict``, FlashRank (ONNX Runtime, int8), and PyLate's ColBERT.

Each builder takes the folder this benchmark saved a model to and returns ``(score, model)``:
``score(frame)`` re-ranks one query's candidates from their raw text (tokenisation included, as
for this package's re-rankers) and returns the scores in the frame's row order.

PyLate's ColBERT runs as sentence-transformers' ``MultiVectorEncoder``, which is PyLate's model
carried into sentence-transformers 6 (it loads PyLate's checkpoint layout, which
:func:`save_colbert` writes). The ``pylate`` package itself cannot be installed beside this
package: every release pins an older stack (1.6.0: transformers ≤ 5.3, torch 2.11,
sentence-transformers 5.3) and, installed without its pins, calls sentence-transformers APIs that
version 6 renamed. Install the peers with ``pip install -e ".[bench]"``.

FlashRank scores a cross-encoder exported to ONNX and quantised to int8 by ONNX Runtime, as its own
models are: :func:`save_flashrank` exports this package's weights into its layout. sentence-transformers'
own ONNX and OpenVINO backends (``CrossEncoder(..., backend="onnx")``) cannot be installed beside this
package: they need ``optimum-onnx`` (transformers < 4.58) and ``optimum-intel`` (transformers < 5.6),
and this package needs transformers 5.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import torch

PEERS = {
    # system → (label, peer of which of this package's systems)
    "st-cross-encoder": ("sentence-transformers CrossEncoder.predict (same weights)", "cross-encoder"),
    "st-cross-encoder-l6": ("sentence-transformers CrossEncoder.predict, 6 layers", "cross-encoder-l6"),
    "pylate-colbert": ("PyLate ColBERT (MultiVectorEncoder), encode + MaxSim (same weights)", "colbert"),
    "flashrank": ("FlashRank (ONNX Runtime, int8; same weights exported)", "cross-encoder"),
}
#: the model name FlashRank reads a MiniLM-L12 cross-encoder under (its file: int8, ``_Q``)
FLASHRANK_NAME = "ms-marco-MiniLM-L-12-v2"

INSTALL = 'pip install -e ".[bench]"'


def missing() -> str | None:
    """None when the peers can run here, else the command that installs them."""
    try:
        import flashrank  # noqa: F401
        import onnxruntime  # noqa: F401
        from sentence_transformers import CrossEncoder, MultiVectorEncoder  # noqa: F401
    except ImportError:
        return INSTALL
    return None


def save_flashrank(model, tokenizer, folder: str, max_length: int = 512) -> None:
    """A cross-encoder of this package as FlashRank reads one: ``folder/<name>/`` holding the ONNX
    export of its HF model, quantised to int8 by ONNX Runtime (as FlashRank's own ``_Q`` models are),
    beside the tokenizer's files."""
    import flashrank.Config
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = os.path.join(folder, FLASHRANK_NAME)
    os.makedirs(target, exist_ok=True)
    encoder = model.encoder.float().eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    fp32 = os.path.join(folder, "model-fp32.onnx")
    with warnings.catch_warnings():  # the tracer's notes on shape checks it keeps dynamic (the export is tested)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            fp32,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"],
            dynamic_axes={
                name: {0: "batch", 1: "length"} for name in ("input_ids", "attention_mask", "token_type_ids")
            },
            opset_version=17,
            dynamo=False,
        )
    onnx.checker.check_model(fp32, full_check=True)
    quantize_dynamic(
        fp32, os.path.join(target, flashrank.Config.model_file_map[FLASHRANK_NAME]), weight_type=QuantType.QInt8
    )
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(target)
    with open(os.path.join(target, "config.json"), "w") as f:
        json.dump({**encoder.config.to_dict(), "pad_token_id": tokenizer.pad_token_id}, f)
    with open(os.path.join(target, "special_tokens_map.json"), "w") as f:
        json.dump({k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}, f)


def flashrank(folder: str, max_length: int = 512):
    """FlashRank's ``Ranker`` on the export :func:`save_flashrank` wrote; its scores are the logits'
    sigmoid, returned here as logits (the same ranking) to compare with this package's."""
    from flashrank import Ranker, RerankRequest

    ranker = Ranker(model_name=FLASHRANK_NAME, cache_dir=folder, max_length=max_length, log_level="WARNING")

    def score(df):
        queries = df["query"].unique()
        if len(queries) != 1:
            raise ValueError("FlashRank re-ranks one query's candidates at a time")
        passages = [{"id": i, "text": t} for i, t in enumerate(df["text"])]
        ranked = ranker.rerank(RerankRequest(query=str(queries[0]), passages=passages))
        probs = np.empty(len(passages), dtype=np.float64)
        for p in ranked:
            probs[p["id"]] = p["score"]
        probs = np.clip(probs, 1e-12, 1 - 1e-12)
        return np.log(probs / (1 - probs))

    return score, ranker


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
