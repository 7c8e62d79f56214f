"""What identifies the model and tokenizer behind stored document states."""

from __future__ import annotations

import hashlib
import json

import torch

_VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "transformers_version",
    "_commit_hash",
    "architectures",
    "dtype",
    "torch_dtype",
    "_attn_implementation",
    "_attn_implementation_autoset",
    "trained_lengths",
    "authors_checkpoint",
}
#: the precisions a fingerprint is recorded at: a re-ranker run in bf16 or fp16 matches an index
#: built by the same model in fp32 (compared at the lower precision)
PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _stable(d):
    """A config dict without the keys that change on save/load or with the run-time dtype."""
    if isinstance(d, dict):
        return {k: _stable(v) for k, v in sorted(d.items()) if k not in _VOLATILE_CONFIG_KEYS}
    return d


def model_fingerprint(reranker, with_extras: bool, precision: str) -> str:
    """Hash of the model's config and of every weight the stored states depend on, with the
    weights rounded to ``precision``."""
    config = json.loads(reranker.model.config.to_json_string(use_diff=False))
    h = hashlib.sha256(json.dumps(_stable(config), sort_keys=True).encode())
    dtype = PRECISIONS[precision]
    for m in reranker.fingerprint_modules(with_extras):
        for name, p in m.state_dict().items():
            h.update(name.encode())
            h.update(p.detach().to("cpu").to(dtype).to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def model_precision(reranker) -> str:
    dtype = next(reranker.model.parameters()).dtype
    return {v: k for k, v in PRECISIONS.items()}.get(dtype, "float32")


def model_fingerprints(reranker, with_extras: bool) -> dict[str, str]:
    """The fingerprint at every precision at least as coarse as the model's own."""
    own = model_precision(reranker)
    keep = {"float32": list(PRECISIONS), "float16": ["float16"], "bfloat16": ["bfloat16"]}[own]
    return {p: model_fingerprint(reranker, with_extras, p) for p in keep}


def compare_precision(a: str, b: str) -> str:
    """The precision two fingerprints are compared at (the coarser of the two models')."""
    return a if a == b else (b if a == "float32" else a if b == "float32" else "bfloat16")


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer's definition (vocabulary, normalisation, pre-tokenisation, special
    tokens); not of its truncation/padding state, which HF rewrites on every call."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        spec = json.dumps(tokenizer.get_vocab(), sort_keys=True)
    else:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        spec = json.dumps(spec, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()
