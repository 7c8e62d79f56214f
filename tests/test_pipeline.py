"""A real pipeline: PISA BM25 over a corpus built here, % k >> text >> re-ranker, in pt.Experiment."""

import os

import pandas as pd
import pyterrier as pt
import pytest
from pyterrier.measures import RR, nDCG

from pyterrier_mice import CrossEncoderReranker, MaskedCrossEncoderModel
from pyterrier_mice.evaluation.datasets import BeirFolder

from conftest import tiny_encoder

pisa = pytest.importorskip("pyterrier_pisa")


@pytest.fixture(scope="module")
def index(beir_folder, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pisa") / "idx.pisa")
    idx = pisa.PisaIndex(path, text_field="text")
    idx.index(BeirFolder(beir_folder).get_corpus_iter())
    return idx


def test_experiment_with_significance(index, beir_folder, tokenizer, tmp_path):
    ds = BeirFolder(beir_folder)
    path = str(tmp_path / "ce")
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    (tmp_path / "runs").mkdir()
    bm25 = index.bm25(num_results=10)
    get_text = pt.text.get_text(ds, "text")
    full = CrossEncoderReranker.from_pretrained(path)
    mask1 = CrossEncoderReranker.from_pretrained(path, policy="mask1")
    res = pt.Experiment(
        [bm25, bm25 % 5 >> get_text >> full, bm25 % 5 >> get_text >> mask1],
        ds.get_topics("test"),
        ds.get_qrels("test"),
        [nDCG @ 10, RR @ 10],
        names=["BM25", "CE", "CE mask1"],
        baseline=0,
        correction="holm",
        save_dir=str(tmp_path / "runs"),
    )
    assert list(res["name"]) == ["BM25", "CE", "CE mask1"]
    for col in ["nDCG@10 p-value", "nDCG@10 p-value corrected", "nDCG@10 reject"]:
        assert col in res.columns
    assert res["nDCG@10 p-value"].iloc[1:].notna().all()
    assert (res["nDCG@10"] >= 0).all()
    assert len(os.listdir(tmp_path / "runs")) >= 3


def test_missing_docno_in_text_loader(beir_folder):
    loader = BeirFolder(beir_folder).text_loader()
    with pytest.raises(KeyError, match="docno 'nope'"):
        loader(pd.DataFrame({"qid": ["1"], "docno": ["nope"]}))


def test_irds_collection_builds_reference_text():
    """Per-dataset document text as the reference builds it, on a stand-in ir_datasets object."""
    from collections import namedtuple

    from pyterrier_mice.evaluation.datasets import IrdsCollection, reference_text_template

    assert reference_text_template("irds:beir/trec-covid") == "{text} {title}"
    assert reference_text_template("beir/scidocs") == "{text}"
    assert reference_text_template("beir/scifact/test") == "{title} {text}"
    assert reference_text_template("msmarco-passage/dev/small") == "{text}"
    Doc = namedtuple("Doc", "doc_id title text")
    docs = {"a": Doc("a", "Title A", "abstract a"), "b": Doc("b", "Title B", "abstract b")}

    class Store:
        def get(self, docno):
            return docs[docno]

    class Fake:
        def docs_iter(self):
            return iter(docs.values())

        def docs_store(self):
            return Store()

    coll = IrdsCollection("beir/trec-covid", dataset=Fake())
    assert [d["text"] for d in coll.get_corpus_iter()] == ["abstract a Title A", "abstract b Title B"]
    out = pt.text.get_text(coll, "text")(pd.DataFrame({"qid": ["1", "1"], "docno": ["b", "a"]}))
    assert out["text"].tolist() == ["abstract b Title B", "abstract a Title A"]
    with pytest.raises(KeyError, match="docno 'zz'"):
        coll.text_loader()(pd.DataFrame({"qid": ["1"], "docno": ["zz"]}))


def test_what_a_run_prints_names_no_path_of_the_machine(tmp_path, monkeypatch, capsys):
    """A bundled collection is shown by its name however it was opened, and the BM25 cache under the
    home folder as ``~/…``: notebook outputs are committed, and must not carry this machine's paths."""
    from pyterrier_mice.evaluation.datasets import BeirFolder, dataset_path
    from pyterrier_mice.evaluation.retrieval import bm25

    assert repr(BeirFolder(dataset_path("cranfield-mini"))) == "BeirFolder('cranfield-mini')"
    monkeypatch.delenv("PYTERRIER_MICE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    bm25(BeirFolder(dataset_path("cranfield-mini")), num_results=5)
    out = capsys.readouterr().out
    assert "indexing BeirFolder('cranfield-mini') with PISA (BM25) into ~/.cache/pyterrier_mice/bm25" in out
    assert str(tmp_path) not in out
