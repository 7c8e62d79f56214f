"""Test collections (a BEIR-layout folder, a bundled one by name, or an ir_datasets id) behind one
small API that ``pt.text.get_text`` and ``pt.Experiment`` accept."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from typing import Iterator

import pandas as pd
import pyterrier as pt

#: collections shipped with the package, in BEIR layout (see each folder's README)
BUNDLED = ("cranfield", "cranfield-mini")
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")  # pyterrier_mice/data


def dataset_path(spec) -> str:
    """``spec``, or the folder of a collection bundled with the package when ``spec`` names one
    (``"cranfield"``: the full collection, ``"cranfield-mini"``) and no such path exists."""
    spec = os.fspath(spec)
    if spec in BUNDLED and not os.path.exists(spec):
        return os.path.join(DATA, spec)
    return spec


def bundled_name(path) -> str | None:
    """The name of the bundled collection at ``path``, if it is one."""
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    bundled = name in BUNDLED and os.path.exists(path)
    return name if bundled and os.path.samefile(path, os.path.join(DATA, name)) else None


def _doc_text(title: str, text: str, template: str) -> str:
    return template.format(title=title or "", text=text or "").strip()


class BeirFolder:
    """A BEIR-layout folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

    ``text_template`` builds the ``text`` column from a document's ``title`` and ``text``
    (default ``"{title} {text}"``).
    """

    def __init__(self, path: str, text_template: str = "{title} {text}"):
        self.path = dataset_path(path)
        self.spec = bundled_name(self.path) or os.fspath(path)  # a bundled collection's name, or the path given
        self.text_template = text_template
        for name in ("corpus.jsonl", "queries.jsonl"):
            if not os.path.exists(os.path.join(self.path, name)):
                raise FileNotFoundError(f"{self.path!r} is not a BEIR folder: missing {name}")
        self._texts: dict[str, str] | None = None

    def __repr__(self):
        return f"BeirFolder({self.spec!r})"

    def get_corpus_iter(self, verbose: bool = False) -> Iterator[dict]:
        """Yields ``{'docno', 'text'}`` dicts."""
        with open(os.path.join(self.path, "corpus.jsonl"), encoding="utf8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    yield {
                        "docno": str(d["_id"]),
                        "text": _doc_text(d.get("title", ""), d.get("text", ""), self.text_template),
                    }
                except (json.JSONDecodeError, KeyError) as e:
                    raise ValueError(f"{self.path}/corpus.jsonl line {n}: bad record ({e})") from e

    def splits(self) -> list[str]:
        qdir = os.path.join(self.path, "qrels")
        return sorted(f[:-4] for f in os.listdir(qdir) if f.endswith(".tsv")) if os.path.isdir(qdir) else []

    def get_qrels(self, split: str = "test") -> pd.DataFrame:
        """Qrels of a split as ``qid, docno, label``."""
        path = os.path.join(self.path, "qrels", f"{split}.tsv")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no qrels for split {split!r} in {self.path!r}; available: {self.splits()}")
        rows = []
        with open(path, encoding="utf8") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader)
            if len(header) < 3:
                raise ValueError(f"{path}: expected a header 'query-id corpus-id score'")
            for r in reader:
                if r:
                    rows.append((str(r[0]), str(r[1]), int(float(r[2]))))
        return pd.DataFrame(rows, columns=["qid", "docno", "label"])

    def get_topics(self, split: str | None = "test") -> pd.DataFrame:
        """Queries as ``qid, query``; with a split, only those judged in it."""
        rows = []
        with open(os.path.join(self.path, "queries.jsonl"), encoding="utf8") as f:
            for line in f:
                if line.strip():
                    q = json.loads(line)
                    rows.append((str(q["_id"]), q["text"]))
        topics = pd.DataFrame(rows, columns=["qid", "query"])
        if split is not None:
            judged = set(self.get_qrels(split)["qid"])
            topics = topics[topics["qid"].isin(judged)].reset_index(drop=True)
        return topics

    def texts(self) -> dict[str, str]:
        if self._texts is None:
            self._texts = {d["docno"]: d["text"] for d in self.get_corpus_iter()}
        return self._texts

    def text_loader(self, fields="*", *, verbose: bool = False, **kwargs) -> pt.Transformer:
        """A transformer adding the ``text`` column by ``docno`` (for ``pt.text.get_text``)."""
        return DocTextLoader(self)


class DocTextLoader(pt.Transformer):
    """Adds ``text`` to a result frame by ``docno`` from a :class:`BeirFolder` or :class:`IrdsCollection`."""

    schematic = {"label": "get_text", "help_url": None}

    def __init__(self, dataset: BeirFolder):
        self.dataset = dataset

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.columns(inp, includes=["docno"])
        texts = self.dataset.texts()
        values = [texts.get(d) for d in inp["docno"]]
        missing = [d for d, v in zip(inp["docno"], values) if v is None]
        if missing:
            raise KeyError(f"docno {missing[0]!r} not in {self.dataset.path}")
        return inp.drop(columns=["text"], errors="ignore").assign(text=pd.Series(values, index=inp.index, dtype=object))

    def fuse_rank_cutoff(self, k):
        return pt.RankCutoff(k) >> self

    def __eq__(self, other):
        return isinstance(other, DocTextLoader) and other.dataset.path == self.dataset.path

    def __hash__(self):
        return hash(("DocTextLoader", self.dataset.path))

    def __repr__(self):
        return f"DocTextLoader({self.dataset.path!r})"


# Document text as the MICE reference implementation builds it (datamaestro_text), which is not
# ir_datasets' default_text(): TREC-COVID swaps abstract and title; these sets drop the title.
_REFERENCE_TEMPLATES = {
    "beir/trec-covid": "{text} {title}",
    "beir/fiqa": "{text}",
    "beir/quora": "{text}",
    "beir/webis-touche2020": "{text}",
    "beir/scidocs": "{text}",
}


def reference_text_template(irds_id: str) -> str:
    """The reference's ``text`` template for an ir_datasets id (``{title}``/``{text}`` fields)."""
    irds_id = irds_id[len("irds:") :] if irds_id.startswith("irds:") else irds_id
    for prefix, template in _REFERENCE_TEMPLATES.items():
        if irds_id == prefix or irds_id.startswith(prefix + "/"):
            return template
    return "{title} {text}" if irds_id.startswith("beir/") else "{text}"


class DatasetUnavailable(OSError):
    """An ir_datasets collection that is not in the local cache and could not be downloaded."""


def _unavailable(path: str, what: str, error: BaseException) -> DatasetUnavailable:
    """One line: what was tried for ``what`` of ``path``, and the local alternatives."""
    import ir_datasets

    tried = error.args[1] if isinstance(error, RuntimeError) and len(error.args) > 1 else []  # [(source, error)]
    urls = [getattr(source, "url", None) for source, _ in tried]
    why = type(tried[0][1]).__name__ if tried else f"{type(error).__name__}: {' '.join(str(error).split())}"
    sources = f"tried {', '.join(u for u in urls if u)}: " if any(urls) else ""
    home = ir_datasets.util.home_path()
    return DatasetUnavailable(
        f"dataset {path!r}: ir_datasets could not download the files of its {what} ({sources}{why}; no network?) "
        "and has no copy "
        f"in {home}; fetch it once while online (`pyterrier-mice prefetch --dataset {path}`, or copy a prepared "
        f"{home} here), or pass a local BEIR-layout folder instead"
    )


@contextlib.contextmanager
def _fetching(path: str, what: str):
    """ir_datasets' download failures as one :class:`DatasetUnavailable` line (its log lines up to
    warnings silenced meanwhile: retries and failed tries; its progress bars still show)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # ir_datasets' loggers do not propagate: its per-try lines, while this runs
    try:
        yield
    except RuntimeError as e:
        if not (e.args and e.args[0] == "All download sources failed"):
            raise
        raise _unavailable(path, what, e) from None  # its cause is in the line: no chain of tracebacks
    except OSError as e:  # ConnectionError, TimeoutError and requests' errors are OSErrors
        if isinstance(e, DatasetUnavailable):
            raise
        raise _unavailable(path, what, e) from None
    finally:
        logging.disable(previous)


class IrdsCollection:
    """An ir_datasets collection whose ``text`` is built per dataset as the reference does
    (:func:`reference_text_template`), both for indexing and for ``pt.text.get_text``. A collection
    that is neither cached nor downloadable raises :class:`DatasetUnavailable` (one line)."""

    def __init__(self, irds_id: str, dataset=None):
        import ir_datasets

        self.irds_id = irds_id[len("irds:") :] if irds_id.startswith("irds:") else irds_id
        self.path = f"irds:{self.irds_id}"
        if dataset is None:
            try:
                dataset = ir_datasets.load(self.irds_id)
            except KeyError:
                raise ValueError(
                    f"dataset {self.path!r}: ir_datasets has no such id (`ir_datasets list` shows them "
                    "all); or pass a local BEIR-layout folder"
                ) from None
        self.dataset = dataset
        self.text_template = reference_text_template(self.irds_id)
        self._texts = None

    def __repr__(self):
        return f"IrdsCollection({self.irds_id!r})"

    def _text(self, doc) -> str:
        return _doc_text(getattr(doc, "title", ""), getattr(doc, "text", ""), self.text_template)

    def get_corpus_iter(self, verbose: bool = False):
        with _fetching(self.path, "documents"):
            for doc in self.dataset.docs_iter():
                yield {"docno": doc.doc_id, "text": self._text(doc)}

    def get_topics(self, split=None) -> pd.DataFrame:
        with _fetching(self.path, "queries"):
            rows = [(q.query_id, q.text) for q in self.dataset.queries_iter()]
        return pd.DataFrame(rows, columns=["qid", "query"])

    def get_qrels(self, split=None) -> pd.DataFrame:
        with _fetching(self.path, "qrels"):
            rows = [(q.query_id, q.doc_id, q.relevance) for q in self.dataset.qrels_iter()]
        return pd.DataFrame(rows, columns=["qid", "docno", "label"])

    def texts(self) -> "_DocstoreTexts":
        if self._texts is None:
            self._texts = _DocstoreTexts(self)
        return self._texts

    def text_loader(self, fields="*", *, verbose: bool = False, **kwargs) -> pt.Transformer:
        return DocTextLoader(self)


class _DocstoreTexts:
    """A read-only mapping docno → reference text over an ir_datasets docstore."""

    def __init__(self, coll: IrdsCollection):
        with _fetching(coll.path, "documents"):
            self.coll, self.store = coll, coll.dataset.docs_store()
        self._fetched = False  # the first lookup may download the docstore; later ones read it

    def get(self, docno, default=None):
        # _fetching only until a lookup succeeds: it toggles logging.disable, which clears every logger's cache
        guard = contextlib.nullcontext() if self._fetched else _fetching(self.coll.path, "documents")
        try:
            with guard:
                text = self.coll._text(self.store.get(docno))
        except KeyError:
            return default
        self._fetched = True
        return text

    def __getitem__(self, docno):
        text = self.get(docno)
        if text is None:
            raise KeyError(docno)
        return text
