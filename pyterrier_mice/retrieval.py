"""BM25 first stage: one PISA index per corpus, built once under a work directory and reused."""
from __future__ import annotations

import hashlib
import os
import re


def corpus_key(collection) -> str:
    """A file-name-safe key for ``collection``'s corpus and document text: a :class:`BeirFolder`'s
    absolute path with its ``corpus.jsonl``'s size and modification time, or the ir_datasets id
    that provides an :class:`IrdsCollection`'s documents (``msmarco-passage`` for its dev and
    TREC DL sets), plus the text template."""
    irds_id = getattr(collection, "irds_id", None)
    if irds_id is not None:
        import ir_datasets
        try:
            source = ir_datasets.docs_parent_id(irds_id)
        except Exception:  # a stand-in dataset object, or an id ir_datasets does not know
            source = irds_id
        version = ""
    else:
        source = os.path.abspath(collection.path)
        st = os.stat(os.path.join(source, "corpus.jsonl"))
        version = f"{st.st_size}:{st.st_mtime_ns}"  # an edited corpus gets a new index
    template = getattr(collection, "text_template", "")
    digest = hashlib.sha1(f"{source}\0{version}\0{template}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(os.path.normpath(source))).strip("_")
    return f"{slug}-{digest}"


def bm25(collection, work_dir: str, num_results: int = 1000):
    """PISA BM25 over ``collection`` (anything with ``path``/``irds_id`` and ``get_corpus_iter``),
    indexing it under ``work_dir`` the first time."""
    from pyterrier_pisa import PisaIndex
    os.makedirs(work_dir, exist_ok=True)
    index = PisaIndex(os.path.join(work_dir, f"bm25-{corpus_key(collection)}.pisa"), text_field="text")
    if not index.built():
        index.index(collection.get_corpus_iter())
    return index.bm25(num_results=num_results)
