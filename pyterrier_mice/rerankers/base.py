"""The PyTerrier re-ranker contract shared by every re-ranker of this package: input checks,
batching, devices and precisions, ranks, finite scores, loading, pickling and inspection."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyterrier as pt
import torch

from ..progress import bar
from . import profiling
from .checks import MissingTextColumn, check_finite, first_invalid_text, refuse_duplicates
from .precision import Computing, check_precision, weights_dtype
from .signatures import constructor_signature, keywords_of
from .source import recording_source, weights_checksum
from ..models.checkpoints import check_model_kind, load_tokenizer
from ..models.prior import Prior, prior_scale_of


def infer_device(device=None) -> torch.device:
    """``None`` → cuda if available, else cpu; asking for an unavailable CUDA device is an error."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ValueError(
            f"device={str(device)!r}, but CUDA is not available here (torch {torch.__version__}, "
            f"{build}); pass device='cpu', or device=None to use CUDA only when present"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r}, but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def run_batched(
    order: np.ndarray, batch_size: int, fn: Callable[[np.ndarray], np.ndarray], progress=None
) -> np.ndarray:
    """Apply ``fn`` to consecutive slices of ``order``; halve the batch on CUDA out-of-memory.

    Returns the concatenated results in the order of ``order``.
    """
    out, start, size = [], 0, batch_size
    while start < len(order):
        idx = order[start : start + size]
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
    """Base class of the package's re-rankers: a PyTerrier transformer that takes a result frame with
    ``qid, query, docno`` and the document text, and returns it with ``score`` and ``rank`` replaced.

    Keyword arguments of every re-ranker (and of its ``from_pretrained``):

    :param batch_size: the most sequences one forward pass holds (query-document pairs, or texts
        encoded alone); halved on CUDA out-of-memory (default 32).
    :param text_field: the column holding the document text (default ``"text"``).
    :param verbose: a progress bar while scoring.
    :param device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``…; ``None``: CUDA when present, else the CPU.
    :param precision: what the model computes in: ``None`` (as loaded, fp32); ``"bf16"`` (CUDA: bf16
        weights; CPU: bf16 autocast); ``"fp16"`` (CUDA); ``"int8"`` (CPU: the linear layers quantised).
    :param prior: a :class:`~pyterrier_mice.models.prior.Prior` (a bi-encoder's similarity × a scale)
        added to every score: the model's, when its config names one (``prior_scale``), which
        ``from_pretrained`` loads from the folder's ``prior/``; it computes in float32 whatever ``precision``.

    Every score is a finite number, or the re-ranker says which pair was not. A re-ranker loaded with
    ``from_pretrained`` pickles as that call (its path and arguments), not as its weights, unless its
    weights were changed after loading; unpickled, it loads again and checks that the weights are the
    ones pickled."""

    schematic = {"label": "Reranker", "help_url": None}
    #: the model class :meth:`from_pretrained` loads
    model_class: type | None = None
    #: the length options of this re-ranker, which training records as the lengths a model was trained at
    length_options: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__signature__ = signature = constructor_signature(cls)
        init = cls.__dict__.get("__init__")
        if init is not None:  # what pt.inspect reads: the parameters a **kwargs passes to the base classes
            own = list(inspect.signature(init).parameters.values())[:1]
            init.__signature__ = signature.replace(parameters=own + list(signature.parameters.values()))
        loader = cls.__dict__.get("from_pretrained")
        if isinstance(loader, classmethod):
            recording = recording_source(loader.__func__)
            recording.__signature__ = keywords_of(loader.__func__, cls.__signature__)
            cls.from_pretrained = classmethod(recording)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        source = state.pop("_pretrained", None)
        if source is not None and source.unchanged(self.model):
            return {"_pretrained": dataclasses.replace(source, versions=None, checksum=weights_checksum(self.model))}
        return state

    def __setstate__(self, state: dict) -> None:
        source = state.get("_pretrained")
        if source is None or len(state) > 1:
            self.__dict__.update(state)
            return
        fresh = source.cls.from_pretrained(source.name_or_path, *source.args, **source.kwargs)
        if not source.same_weights(fresh.model):
            raise ValueError(
                f"{source.cls.__name__}: {source.name_or_path!r} no longer holds the weights this "
                "re-ranker was pickled with (the checkpoint changed since); load it again"
            )
        self.__dict__.update(fresh.__dict__)

    def __init__(
        self,
        model,
        tokenizer,
        *,
        model_name: str | None = None,
        batch_size: int = 32,
        text_field: str = "text",
        verbose: bool = False,
        device=None,
        precision: str | None = None,
        prior: Prior | None = None,
    ):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch_size={batch_size!r} must be an integer ≥ 1")
        self.model_name = model_name
        self.batch_size = batch_size
        self.text_field = text_field
        self.verbose = verbose
        self.device = infer_device(device)
        self.precision = check_precision(precision, self.device, type(self).__name__)
        self.model = model.to(self.device, dtype=weights_dtype(precision, self.device)).eval()
        self._computing = Computing(precision, self.device)
        self.tokenizer = tokenizer
        self.prior = self._checked_prior(prior, model)

    def _checked_prior(self, prior: Prior | None, model) -> Prior | None:
        """``prior`` on this re-ranker's device; a model whose scores are defined with a prior (its
        config's ``prior_scale``) is refused without one, and so is a prior of another scale."""
        scale = prior_scale_of(model)
        if prior is None and scale is not None:
            raise ValueError(
                f"{self._who()}: the model's scores add a prior's (a bi-encoder's similarity × {scale}, its "
                "config's prior_scale), and none was given: load it with from_pretrained(folder), which loads the "
                "folder's prior/ too, or pass prior=pyterrier_mice.Prior.load(bi_encoder, scale)"
            )
        if prior is not None and not isinstance(prior, Prior):
            raise TypeError(f"{type(self).__name__}: prior is a {type(prior).__name__}, not a Prior")
        if prior is not None and scale is not None and prior.scale != scale:
            raise ValueError(f"{self._who()}: prior scale {prior.scale} differs from the model's prior_scale {scale}")
        return prior.to(self.device) if prior is not None else None

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, tokenizer=None, **kwargs) -> "Reranker":
        """The model saved at ``name_or_path`` (a folder or hub id) with its tokenizer (or ``tokenizer``)
        as this re-ranker; ``kwargs`` are the re-ranker's. A checkpoint of another kind is refused,
        saying which re-ranker loads it."""
        model = cls.load_model(name_or_path)
        if tokenizer is None:
            tokenizer = load_tokenizer(getattr(model, "tokenizer_source", None) or name_or_path)
        if kwargs.get("prior") is None:
            kwargs["prior"] = Prior.of_checkpoint(name_or_path, model, infer_device(kwargs.get("device")))
        return cls(model, tokenizer, model_name=os.fspath(name_or_path), **kwargs)

    @classmethod
    def load_model(cls, name_or_path: str):
        """The model :meth:`from_pretrained` wraps (checked to be :attr:`model_class`'s kind)."""
        check_model_kind(name_or_path, cls.model_class, cls)
        return cls.model_class.from_pretrained(name_or_path)

    # ------------------------------------------------------------------ PyTerrier contract
    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        with profiling.section("frame"):
            return self._transform(inp)

    def _transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        try:
            pt.validate.result_frame(inp, extra_columns=["query", self.text_field])
        except pt.validate.InputValidationError as e:
            if self.text_field in inp.columns or not {"qid", "query", "docno"} <= set(inp.columns):
                raise
            raise MissingTextColumn(
                f"{type(self).__name__}: the input has no {self.text_field!r} column (the document "
                f"text); add it before re-ranking, e.g. `bm25 % 100 >> pt.text.get_text(dataset, "
                f"{self.text_field!r}) >> reranker`",
                e.modes,
            ) from None
        out = inp.drop(columns=["score", "rank"], errors="ignore")
        if len(out) == 0:
            return pt.model.add_ranks(out.assign(score=pd.Series(dtype="float64")))
        out = out.reset_index(drop=True)
        queries, texts = self._checked_columns(out)
        q_codes, q_uniques = pd.factorize(queries)
        d_codes, d_uniques = pd.factorize(pd.Series(list(zip(out["docno"].astype(str), texts))))
        docnos = [d for d, _ in d_uniques]
        doc_texts = [t for _, t in d_uniques]
        with torch.inference_mode(), profiling.section("model"), self._computing.scoring(self):
            scores = self._score(list(q_uniques), docnos, doc_texts, q_codes, d_codes)
            if self.prior is not None:
                with profiling.section("prior"):
                    scores = scores + self._prior_scores(list(q_uniques), docnos, doc_texts, q_codes, d_codes)
        check_finite(scores, out, self._who(), "the model scored")
        out["score"] = np.asarray(scores, dtype=np.float64)
        out = pt.model.add_ranks(out)
        return out.sort_values(["qid", "rank"], kind="stable").reset_index(drop=True)

    def _checked_columns(self, df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        qmissing = df["query"].isna() | ~df["query"].map(lambda x: isinstance(x, str))
        if qmissing.any():
            bad = df.loc[qmissing, "qid"].iloc[0]
            raise ValueError(
                f"{type(self).__name__}: column 'query' is missing or not a string "
                f"for {int(qmissing.sum())} row(s), e.g. qid={bad!r}"
            )
        refuse_duplicates(df, type(self).__name__, "drop duplicates before re-ranking")
        text = df[self.text_field]
        tmissing = text.isna()
        if tmissing.any():
            warnings.warn(
                f"{type(self).__name__}: column {self.text_field!r} is NaN/None for "
                f"{int(tmissing.sum())} row(s) (e.g. docno={df.loc[tmissing, 'docno'].iloc[0]!r}); "
                "scoring them as empty documents"
            )
            text = text.where(~tmissing, "")
        nonstr = ~text.map(lambda x: isinstance(x, str))
        if nonstr.any():
            raise ValueError(
                f"{type(self).__name__}: column {self.text_field!r} holds non-string values "
                f"(e.g. {text[nonstr].iloc[0]!r} for docno={df.loc[nonstr, 'docno'].iloc[0]!r})"
            )
        for column, values, key in (("query", df["query"], "qid"), (self.text_field, text, "docno")):
            i = first_invalid_text(values)
            if i is not None:
                raise ValueError(
                    f"{type(self).__name__}: column {column!r} holds text that is not valid Unicode (a lone "
                    f"surrogate) for {key}={df[key].iloc[i]!r}; clean it before re-ranking, e.g. "
                    "text.encode('utf-8', 'replace').decode('utf-8')"
                )
        return df["query"], text

    def _score(
        self, queries: Sequence[str], docnos: Sequence[str], docs: Sequence[str], qidx: np.ndarray, didx: np.ndarray
    ) -> np.ndarray:
        """Scores of pairs ``(queries[qidx[i]], docs[didx[i]])``; queries/docs are unique."""
        raise NotImplementedError

    def _prior_scores(
        self, queries: Sequence[str], docnos: Sequence[str], docs: Sequence[str], qidx: np.ndarray, didx: np.ndarray
    ) -> np.ndarray:
        """The prior's scores of the pairs :meth:`_score` scores (each text embedded by the prior)."""
        return self.prior.scores(queries, docs, qidx, didx)

    def forward_pairs(self, queries: Sequence[str], docs: Sequence[str]) -> torch.Tensor:
        """Differentiable scores ``[N]`` of aligned pairs in one pass, the prior's aside (see
        :meth:`training_scores`)."""
        raise NotImplementedError

    def training_scores(self, queries: Sequence[str], docs: Sequence[str]) -> torch.Tensor:
        """What training differentiates: :meth:`forward_pairs`, plus the prior's scores (constants)."""
        scores = self.forward_pairs(queries, docs)
        if self.prior is None:
            return scores
        prior = torch.as_tensor(self.prior.pair_scores(queries, docs), device=scores.device)
        return scores + prior.to(scores.dtype)

    def score_pairs(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """Scores of aligned ``(query, doc)`` pairs, outside PyTerrier."""
        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} docs")
        df = pd.DataFrame(
            {
                "qid": [str(i) for i in range(len(queries))],
                "query": list(queries),
                "docno": [str(i) for i in range(len(docs))],
                self.text_field: list(docs),
            }
        )
        return self.transform(df).sort_values("docno", key=lambda s: s.astype(int))["score"].to_numpy()

    # ------------------------------------------------------------------ helpers
    def _length(self, name: str, given: int | None, default: int) -> int:
        """A length option's value: ``given``, else the length the model was trained at (recorded by
        training in its config), else ``default``."""
        return given or (getattr(self.model.config, "trained_lengths", None) or {}).get(name) or default

    def _check_lengths(self, max_pos: int | None = None, **lengths) -> None:
        """Each length argument must fit the model: at least room for one token with its specials
        (``[CLS] x [SEP]``: 3; a pair ``[CLS] q [SEP] d [SEP]``: 5), at most the position limit."""
        max_pos = max_pos or self.model.encoder.config.max_position_embeddings
        for name, value in lengths.items():
            low = 5 if name == "max_length" else 3
            if value is None:
                continue
            if not isinstance(value, (int, np.integer)) or not low <= value <= max_pos:
                raise ValueError(
                    f"{type(self).__name__}: {name}={value!r} is out of range; it must be an integer "
                    f"from {low} to {max_pos} (the model's max_position_embeddings)"
                )

    def _progress(self, total: int, desc: str):
        if not self.verbose or total == 0:
            return None
        return bar(total=total, desc=desc, unit="pair")

    def _warn_truncated(self, n: int, total: int, what: str, limit: int | None = None, summary: bool = False) -> None:
        """Warn that ``n`` of ``total`` texts were cut at ``limit`` tokens: once per re-ranker and kind
        of text (later calls are silent), or once per :meth:`collect_truncation` block (``summary``)."""
        collected = getattr(self, "_truncation_summary", None)
        if collected is not None:  # inside collect_truncation(): one warning at the end
            n0, total0, _ = collected.get(what, (0, 0, limit))
            collected[what] = (n0 + n, total0 + total, limit)
            return
        warned = self.__dict__.setdefault("_truncation_warned", set())
        if not n or (what in warned and not summary):
            return
        warned.add(what)
        later = "" if summary else " (said once per re-ranker)"
        warnings.warn(f"{type(self).__name__}: {n} of {total} {what} exceeded {limit} tokens and were truncated{later}")

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
                self._warn_truncated(n, total, what, limit, summary=True)

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) for k, v in batch.items()}

    # ------------------------------------------------------------------ identity
    def _who(self) -> str:
        """The re-ranker and its model, for messages."""
        return f"{type(self).__name__}({self.model_name!r})" if self.model_name else type(self).__name__

    def cache_key(self) -> str:
        """A short key naming everything this re-ranker's scores depend on: its class, its weights (a
        digest of their values) and every setting that changes a score (text field, precision, lengths,
        policy, index, …). pyterrier-caching's ``ScorerCache`` keys scores by query and docno alone, so
        give each re-ranker its own folder: ``ScorerCache(f"cache/{rr.cache_key()}", rr)``. Two
        re-rankers share a key only if they score alike."""
        import hashlib

        h = hashlib.sha256(type(self).__qualname__.encode())
        h.update(weights_checksum(self.model).tobytes())
        h.update(repr(self._config_key()[1:]).encode())  # the prior's digest among them
        return h.hexdigest()[:16]

    def _config_key(self) -> tuple:
        return (
            self.model_name if self.model_name is not None else id(self.model),
            self.text_field,
            str(self.precision),
            *(getattr(self, name) for name in self.length_options),
            *(() if getattr(self, "prior", None) is None else (self.prior.digest(),)),
        )

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._config_key() == other._config_key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._config_key()))

    def _repr_args(self) -> list[str]:
        args = [repr(self.model_name) if self.model_name is not None else f"<model {id(self.model):#x}>"]
        if self.text_field != "text":
            args.append(f"text_field={self.text_field!r}")
        if self.precision is not None:
            args.append(f"precision={self.precision!r}")
        if self.prior is not None:
            args.append(f"prior={self.prior!r}")
        return args

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_args())})"


Reranker.__signature__ = constructor_signature(Reranker)
Reranker.from_pretrained = classmethod(recording_source(Reranker.from_pretrained.__func__))
