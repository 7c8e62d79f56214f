"""Writes tests/data/pre_layout: a MICE checkpoint, a cross-encoder, a K/V index, a pickled re-ranker
and their scores, from the code before the package was split into layers (the tree of commit 71bd702,
run once; kept so that what users saved then still loads: tests/test_layout.py)."""

import json
import os
import pickle
import sys

import pandas as pd
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from conftest import DOCS, QUERIES, VOCAB, tiny_encoder  # noqa: E402


def main(out=os.path.join(HERE, "pre_layout")):
    from transformers import BertTokenizerFast

    from pyterrier_mice import CrossEncoderReranker, MaskedCrossEncoderModel, MiceIndex, MiceModel, MiceReranker

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB))
    tok = BertTokenizerFast(os.path.join(out, "vocab.txt"))
    os.remove(os.path.join(out, "vocab.txt"))
    torch.manual_seed(0)
    mice = MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=4), tok, 2, 2, exact_match_heads=True).eval()
    mice.save_pretrained(os.path.join(out, "mice"))
    tok.save_pretrained(os.path.join(out, "mice"))
    ce = MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", seed=3), tok, "mask1").eval()
    ce.save_pretrained(os.path.join(out, "ce"))
    tok.save_pretrained(os.path.join(out, "ce"))
    rr = MiceReranker.from_pretrained(os.path.join(out, "mice"))
    corpus = [{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()]
    MiceIndex(os.path.join(out, "index")).indexer(rr, kv=True, storage="fp32").index(corpus)
    frame = pd.DataFrame(
        [
            {"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])}
            for q in ("1", "3")
            for d in ("d1", "d3", "d4", "d10")
        ]
    )
    scores = {
        "mice": _scores(rr, frame),
        "ce": _scores(CrossEncoderReranker.from_pretrained(os.path.join(out, "ce")), frame),
    }
    with open(os.path.join(out, "reranker.pkl"), "wb") as f:
        pickle.dump(rr, f)
    frame.to_json(os.path.join(out, "frame.json"), orient="records")
    with open(os.path.join(out, "scores.json"), "w") as f:
        json.dump(scores, f, indent=1)


def _scores(rr, frame):
    res = rr(frame).set_index(["qid", "docno"])["score"]
    return [float(res.loc[(q, d)]) for q, d in zip(frame["qid"], frame["docno"])]


if __name__ == "__main__":
    main()
