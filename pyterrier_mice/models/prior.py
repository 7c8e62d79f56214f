"""A model's prior: a sentence-embedding model (bi-encoder) whose similarity of query and document,
times a scale, is added to the model's score, so that the model learns a correction of it.

A cross-encoder trained from a bi-encoder's weights starts with a new head and ranks at random; with
that bi-encoder's cosine as its prior (``model.prior: backbone``), it starts where the bi-encoder ranks
(its new head adds little at step 0) and keeps what it knew on other collections while it learns.
A model trained without one can keep a prior beside it instead, at the scale :func:`equal_scale`
measures on validation queries (training's ``model.prior_scale: equal``).

Saved in the model's folder: ``prior/`` (the bi-encoder in sentence-transformers' layout, run by that
library) and the model config's ``prior_scale``. A folder whose config names a scale but holds no
``prior/`` is refused, never scored without it."""

from __future__ import annotations

import contextlib
import hashlib
import os

import numpy as np
import torch

from .bi_encoder import embedded_once, load_sentence_transformer, pairwise_similarity
from .checkpoints import local_or_hub

#: the folder, inside a model's folder, that holds its prior
PRIOR_FOLDER = "prior"
#: the model config's key for the prior's scale (its absence: the model has no prior)
PRIOR_SCALE = "prior_scale"
#: inside :func:`sharing_embeddings`: the embeddings of each bi-encoder, by :meth:`Prior.shared_key`
_shared: dict[tuple, dict] | None = None


@contextlib.contextmanager
def sharing_embeddings():
    """Within this block the priors loaded from the same bi-encoder (the same files, whatever the
    scale, on the same device) embed each distinct text once between them: what a table of models
    that keep the same cosine needs (a cross-encoder and the MICE derived from it). A prior built from
    a model in memory shares nothing. Outside the block nothing is kept; blocks nest."""
    global _shared
    outer = _shared
    _shared = {} if outer is None else outer
    try:
        yield
    finally:
        _shared = outer


def saved_prior(path) -> tuple[str, float] | None:
    """``(its prior/ folder, scale)`` of a model saved with a prior in the local folder ``path``, or None."""
    import json

    config = os.path.join(os.fspath(path), "config.json")
    if not os.path.isfile(config):
        return None
    try:
        with open(config, encoding="utf8") as f:
            scale = json.load(f).get(PRIOR_SCALE)
    except ValueError:
        return None
    return (os.path.join(os.fspath(path), PRIOR_FOLDER), scale) if scale is not None else None


def equal_scale(model_scores, prior_scores, qids) -> float | None:
    """The scale at which a prior's scores (``prior_scores``, at scale 1) spread as widely as a model's
    (``model_scores``) among the candidates of a query: the ratio of their within-query standard
    deviations, pooled over the queries ``qids`` (one per score). None when the prior's scores do not
    vary within any query (no scale makes it count); 1 when the model's do not (the prior alone ranks)."""
    import pandas as pd

    frame = pd.DataFrame({"m": np.asarray(model_scores, "float64"), "p": np.asarray(prior_scores, "float64")})
    frame["q"] = np.asarray(qids)
    centred = frame[["m", "p"]] - frame.groupby("q", sort=False)[["m", "p"]].transform("mean")
    spread = np.sqrt((centred**2).mean())
    if not np.isfinite(spread["p"]) or spread["p"] == 0:
        return None
    return float(spread["m"] / spread["p"]) if spread["m"] > 0 else 1.0


def prior_scale_of(model) -> float | None:
    """The scale of the prior a model's scores are defined with (its config's ``prior_scale``), or None."""
    return getattr(getattr(model, "config", None), PRIOR_SCALE, None)


class Prior:
    """``scale`` × the similarity (the cosine for most models) of a ``SentenceTransformer``'s query and
    document embeddings, each as the model's ``encode_query`` / ``encode_document`` computes it at the
    model's own length. It is frozen: nothing trains it, and it computes in float32 on its device."""

    def __init__(self, model, scale: float, *, source: str | None = None, batch_size: int = 32):
        if not hasattr(model, "encode_query"):
            raise TypeError(f"Prior: model is a {type(model).__name__}, not a sentence-transformers model")
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"Prior: scale={scale!r} must be a positive number (20: a cosine at temperature 0.05)")
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.scale = float(scale)
        self.source = source
        self.batch_size = batch_size
        self._cache: dict[tuple[str, str], torch.Tensor] | None = None
        self._digest: str | None = None
        self._files_digest: str | None = None
        self._loaded_from: str | None = None  # the folder load() read the model from

    @classmethod
    def load(cls, name_or_path, scale: float, device=None, batch_size: int = 32) -> "Prior":
        """The bi-encoder at ``name_or_path`` (a folder or hub id) as a prior of ``scale``."""
        model = load_sentence_transformer(name_or_path, device)
        prior = cls(model, scale, source=os.fspath(name_or_path), batch_size=batch_size)
        prior._loaded_from = os.fspath(name_or_path) if os.path.isdir(name_or_path) else None
        prior.shared_key()  # the files' digest now, as read: a folder rewritten later is not this model
        return prior

    @classmethod
    def of_checkpoint(cls, name_or_path, model, device=None, batch_size: int = 32) -> "Prior | None":
        """The prior saved with the model at ``name_or_path`` (its ``prior/``), or None when the model's
        config names none; a config that names one whose folder is missing is refused."""
        scale = prior_scale_of(model)
        if scale is None:
            return None
        path = os.fspath(name_or_path)
        if os.path.isdir(path):
            folder = os.path.join(path, PRIOR_FOLDER)
        else:  # a hub id: its prior/ folder, downloaded beside the model
            from huggingface_hub import snapshot_download

            snapshot = snapshot_download(local_or_hub(path), allow_patterns=[f"{PRIOR_FOLDER}/*"])
            folder = os.path.join(snapshot, PRIOR_FOLDER)
        if not os.path.isdir(folder):
            raise ValueError(
                f"{path!r}: its config.json says the scores add a prior's ({PRIOR_SCALE}={scale}), but it holds no "
                f"{PRIOR_FOLDER}/ folder (the bi-encoder); save the model with its prior (training does), or remove "
                f"{PRIOR_SCALE} from its config.json to score it without one"
            )
        return cls.load(folder, scale, device, batch_size)

    def save(self, model, folder: str) -> None:
        """Write the prior into ``folder/prior`` and its scale into ``model``'s config (before the model
        is saved into ``folder``)."""
        self.model.save(os.path.join(folder, PRIOR_FOLDER))
        setattr(model.config, PRIOR_SCALE, self.scale)

    def with_scale(self, scale: float) -> "Prior":
        """The same frozen bi-encoder as a prior of another ``scale``."""
        prior = Prior(self.model, scale, source=self.source, batch_size=self.batch_size)
        prior._loaded_from, prior._files_digest = self._loaded_from, self._files_digest
        return prior

    def to(self, device) -> "Prior":
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.model.device

    def digest(self) -> str:
        """A digest of the prior's weights and scale (what its scores depend on)."""
        if self._digest is None:
            h = hashlib.sha256(repr(self.scale).encode())
            for name, tensor in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().float().cpu().numpy().tobytes())
            self._digest = h.hexdigest()[:16]
        return self._digest

    def shared_key(self) -> tuple | None:
        """What :func:`sharing_embeddings` shares this prior's embeddings under: the content of the
        folder :meth:`load` read it from (weights, pooling, lengths, tokenizer) and its device; None
        for a prior of a model built in memory, whose definition no file holds."""
        if self._loaded_from is None:
            return None
        if self._files_digest is None:
            h = hashlib.sha256()
            for root, dirs, files in os.walk(self._loaded_from):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    h.update(os.path.relpath(path, self._loaded_from).encode("utf8", "surrogatepass") + b"\0")
                    with open(path, "rb") as f:
                        for block in iter(lambda: f.read(1 << 20), b""):
                            h.update(block)
            self._files_digest = h.hexdigest()
        return (self._files_digest, str(self.device))

    @contextlib.contextmanager
    def keeping_embeddings(self):
        """Within this block each distinct text is embedded once (what training, which sees the same
        documents at every pass, needs); outside it, nothing is kept."""
        self._cache = {}
        try:
            yield self
        finally:
            self._cache = None

    def embed(self, texts: list[str], side: str) -> torch.Tensor:
        """``[N, D]`` embeddings of ``texts`` as queries (``side="query"``) or documents."""
        store = self._cache
        if store is None and _shared is not None and (key := self.shared_key()) is not None:
            store = _shared.setdefault(key, {})
        if store is None or not texts:
            return self._encode(texts, side)
        rows = embedded_once(texts, lambda t: (side, t), store, lambda todo: self._encode(todo, side))
        return torch.stack(rows)

    def _encode(self, texts: list[str], side: str) -> torch.Tensor:
        encode = self.model.encode_query if side == "query" else self.model.encode_document
        if not texts:
            return torch.zeros(0, self.model.get_sentence_embedding_dimension(), device=self.device)
        with torch.inference_mode():
            out = encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False)
        return out.float().clone()

    def scores(self, queries, docs, qidx, didx) -> np.ndarray:
        """``scale`` × the similarity of pairs ``(queries[qidx[i]], docs[didx[i]])`` (each distinct text
        embedded once), as float32."""
        return self.embedded_scores(self.embed(list(queries), "query"), self.embed(list(docs), "document"), qidx, didx)

    def embedded_scores(self, q: torch.Tensor, d: torch.Tensor, qidx, didx) -> np.ndarray:
        """:meth:`scores` from query embeddings ``q`` and document embeddings ``d`` (e.g. stored in an index)."""
        q, d = q.to(self.device, torch.float32), d.to(self.device, torch.float32)
        return (self.scale * pairwise_similarity(self.model, q, d, qidx, didx)).cpu().numpy()

    def pair_scores(self, queries, docs) -> np.ndarray:
        """:meth:`scores` of aligned pairs ``(queries[i], docs[i])``."""
        import pandas as pd

        q_codes, q_uniq = pd.factorize(pd.Series(list(queries), dtype=object))
        d_codes, d_uniq = pd.factorize(pd.Series(list(docs), dtype=object))
        return self.scores(list(q_uniq), list(d_uniq), q_codes, d_codes)

    def __repr__(self) -> str:
        return f"Prior({self.source!r}, scale={self.scale:g})"
