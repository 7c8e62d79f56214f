"""The PyTerrier re-ranker contract shared by every re-ranker of this package (input checks,
batching, devices and dtypes, ranks).

Re-rankers layer: imports only :mod:`pyterrier_mice.models` and re-ranker modules."""
from __future__ import annotations

import contextlib
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyterrier as pt
import torch

from . import profiling
from ..models.base import inference_dtype


def infer_device(device=None) -> torch.device:
    """``None`` → cuda if available, else cpu; asking for an unavailable CUDA device is an error."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ValueError(f"device={str(device)!r}, but CUDA is not available here (torch {torch.__version__}, "
                         f"{build}); pass device='cpu', or device=None to use CUDA only when present")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r}, but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def run_batched(order: np.ndarray, batch_size: int, fn: Callable[[np.ndarray], np.ndarray],
                progress=None) -> np.ndarray:
    """Apply ``fn`` to consecutive slices of ``order``; halve the batch on CUDA out-of-memory.

    Returns the concatenated results in the order of ``order``.
    """
    out, start, size = [], 0, batch_size
    while start < len(order):
        idx = order[start:start + size]
        try:
            out.append(fn(idx))
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            torch.cuda.empty_cache()
            size = max(1, size // 2)
            warnings.warn(f"CUDA out of memory; retrying with batch_size={size}")
            continue
        start += len(idx)
        if progress is not None:
            progress.update(len(idx))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def logits_to_scores(logits: torch.Tensor) -> torch.Tensor:
    """One relevance score per row: the logit (1 label) or log P(relevant) (2 labels)."""
    logits = logits.float()
    if logits.dim() == 1 or logits.shape[-1] == 1:
        return logits.reshape(-1)
    if logits.shape[-1] == 2:
        return torch.log_softmax(logits, dim=-1)[:, 1]
    raise ValueError(f"model outputs {logits.shape[-1]} labels; expected 1 or 2")


class Reranker(pt.Transformer):
    """Base class of the package's re-rankers (see module docstring)."""

    schematic = {"label": "Reranker", "help_url": None}

    def __init__(self, model, tokenizer, *, model_name: str | None = None, batch_size: int = 32,
                 text_field: str = "text", verbose: bool = False, device=None, dtype=None,
                 max_length: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model_name = model_name
        self.batch_size = batch_size
        self.text_field = text_field
        self.verbose = verbose
        self.device = infer_device(device)
        self.dtype = dtype
        torch_dtype = inference_dtype(dtype)
        self.model = model.to(self.device, dtype=torch_dtype).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    # ------------------------------------------------------------------ PyTerrier contract
    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        with profiling.section("frame"):
            return self._transform(inp)

    def _transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.result_frame(inp, extra_columns=["query", self.text_field])
        out = inp.drop(columns=["score", "rank"], errors="ignore")
        if len(out) == 0:
            return pt.model.add_ranks(out.assign(score=pd.Series(dtype="float64")))
        out = out.reset_index(drop=True)
        queries, texts = self._checked_columns(out)
        q_codes, q_uniques = pd.factorize(queries)
        d_codes, d_uniques = pd.factorize(pd.Series(list(zip(out["docno"].astype(str), texts))))
        docnos = [d for d, _ in d_uniques]
        doc_texts = [t for _, t in d_uniques]
        with torch.inference_mode(), profiling.section("model"):
            scores = self._score(list(q_uniques), docnos, doc_texts, q_codes, d_codes)
        out["score"] = np.asarray(scores, dtype=np.float64)
        out = pt.model.add_ranks(out)
        return out.sort_values(["qid", "rank"], kind="stable").reset_index(drop=True)

    def _checked_columns(self, df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        qmissing = df["query"].isna() | ~df["query"].map(lambda x: isinstance(x, str))
        if qmissing.any():
            bad = df.loc[qmissing, "qid"].iloc[0]
            raise ValueError(f"{type(self).__name__}: column 'query' is missing or not a string "
                             f"for {int(qmissing.sum())} row(s), e.g. qid={bad!r}")
        dup = df.duplicated(["qid", "docno"])
        if dup.any():
            row = df.loc[dup].iloc[0]
            raise ValueError(f"{type(self).__name__}: {int(dup.sum())} duplicate (qid, docno) row(s), "
                             f"e.g. qid={row['qid']!r}, docno={row['docno']!r}; drop duplicates before re-ranking")
        text = df[self.text_field]
        tmissing = text.isna()
        if tmissing.any():
            warnings.warn(f"{type(self).__name__}: column {self.text_field!r} is NaN/None for "
                          f"{int(tmissing.sum())} row(s) (e.g. docno={df.loc[tmissing, 'docno'].iloc[0]!r}); "
                          "scoring them as empty documents")
            text = text.where(~tmissing, "")
        nonstr = ~text.map(lambda x: isinstance(x, str))
        if nonstr.any():
            raise ValueError(f"{type(self).__name__}: column {self.text_field!r} holds non-string values "
                             f"(e.g. {text[nonstr].iloc[0]!r} for docno={df.loc[nonstr, 'docno'].iloc[0]!r})")
        return df["query"], text

    def _score(self, queries: Sequence[str], docnos: Sequence[str], docs: Sequence[str],
               qidx: np.ndarray, didx: np.ndarray) -> np.ndarray:
        """Scores of pairs ``(queries[qidx[i]], docs[didx[i]])``; queries/docs are unique."""
        raise NotImplementedError

    def forward_pairs(self, queries: Sequence[str], docs: Sequence[str]) -> torch.Tensor:
        """Differentiable scores ``[N]`` of aligned pairs in one pass (used for training)."""
        raise NotImplementedError

    def score_pairs(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """Scores of aligned ``(query, doc)`` pairs, outside PyTerrier."""
        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} docs")
        df = pd.DataFrame({"qid": [str(i) for i in range(len(queries))], "query": list(queries),
                           "docno": [str(i) for i in range(len(docs))], self.text_field: list(docs)})
        return self.transform(df).sort_values("docno", key=lambda s: s.astype(int))["score"].to_numpy()

    # ------------------------------------------------------------------ helpers
    def _check_lengths(self, **lengths) -> None:
        """Each length argument must fit the model: at least room for one token with its specials
        (``[CLS] x [SEP]``: 3; a pair ``[CLS] q [SEP] d [SEP]``: 5), at most the position limit."""
        max_pos = self.model.encoder.config.max_position_embeddings
        for name, value in lengths.items():
            low = 5 if name == "max_length" else 3
            if value is None:
                continue
            if not isinstance(value, (int, np.integer)) or not low <= value <= max_pos:
                raise ValueError(f"{type(self).__name__}: {name}={value!r} is out of range; it must be an integer "
                                 f"from {low} to {max_pos} (the model's max_position_embeddings)")

    def _progress(self, total: int, desc: str):
        if not self.verbose or total == 0:
            return None
        return pt.tqdm(total=total, desc=desc, unit="pair")

    def _warn_truncated(self, n: int, total: int, what: str, limit: int | None = None) -> None:
        summary = getattr(self, "_truncation_summary", None)
        if summary is not None:  # inside collect_truncation(): one warning at the end
            n0, total0, _ = summary.get(what, (0, 0, limit))
            summary[what] = (n0 + n, total0 + total, limit)
            return
        if n:
            warnings.warn(f"{type(self).__name__}: {n} of {total} {what} exceeded "
                          f"{limit or self.max_length} tokens and were truncated")

    @contextlib.contextmanager
    def collect_truncation(self):
        """Within this block, truncation is reported once at the end (e.g. over a whole index
        build) instead of once per batch."""
        self._truncation_summary = {}
        try:
            yield
        finally:
            summary, self._truncation_summary = self._truncation_summary, None
            for what, (n, total, limit) in summary.items():
                self._warn_truncated(n, total, what, limit)

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) for k, v in batch.items()}

    # ------------------------------------------------------------------ identity
    def _config_key(self) -> tuple:
        return (self.model_name if self.model_name is not None else id(self.model),
                self.text_field, self.max_length, str(self.dtype))

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._config_key() == other._config_key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._config_key()))

    def _repr_args(self) -> list[str]:
        args = [repr(self.model_name) if self.model_name is not None else f"<model {id(self.model):#x}>"]
        if self.text_field != "text":
            args.append(f"text_field={self.text_field!r}")
        if self.dtype is not None:
            args.append(f"dtype={self.dtype!r}")
        return args

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_args())})"
