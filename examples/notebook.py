"""The README's notebook example as a script: BM25 (PISA) → cross-encoder, masked cross-encoder,
MICE on the fly and MICE from precomputed document states, in one pt.Experiment.

    python examples/notebook.py ../shared/data/cranfield runs/cranfield_ce/best runs/cranfield_mice/best [K=20]

Arguments: a BEIR-layout folder (or irds:beir/scifact/test online), a cross-encoder checkpoint
(or a hub id such as cross-encoder/ms-marco-MiniLM-L12-v2) and a MICE checkpoint.
"""
import sys

import pyterrier as pt
from pyterrier.measures import RR, nDCG
from pyterrier_pisa import PisaIndex

from pyterrier_mice import CrossEncoderReranker, MiceIndex, MiceReranker
from pyterrier_mice.experiment import open_dataset

data, ce_path, mice_path = sys.argv[1:4]
ds = open_dataset(data, split="test")          # BeirFolder or IrdsCollection, with its topics and qrels
name = ds.label.replace("/", "_")

pisa = PisaIndex(f"runs/{name}.pisa", text_field="text")   # 1. BM25 first stage, no Java
if not pisa.built():
    pisa.index(ds.collection.get_corpus_iter())
bm25 = pisa.bm25(num_results=1000)
get_text = pt.text.get_text(ds.collection, "text")

ce = CrossEncoderReranker.from_pretrained(ce_path)                # 2. re-rankers
mask1 = CrossEncoderReranker.from_pretrained(ce_path, "mask1")    # its [CLS] never reads the document
mice = MiceReranker.from_pretrained(mice_path)

index = MiceIndex(f"runs/{name}.mice")                            # 3. document states, computed once
if not index.built():
    index.indexer(mice, dtype="fp16").index(ds.collection.get_corpus_iter())
mice_indexed = MiceReranker.from_pretrained(mice_path, index=index)

top = bm25 % int(sys.argv[4] if len(sys.argv) > 4 else 20) >> get_text
print(pt.Experiment([bm25, top >> ce, top >> mask1, top >> mice, top >> mice_indexed],
                    ds.topics, ds.qrels, [nDCG @ 10, RR @ 10],
                    names=["BM25", "CE", "CE mask1", "MICE", "MICE (index)"],
                    baseline=0, correction="holm", round=4).to_string())
