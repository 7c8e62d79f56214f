"""PreTTR: the split path equals the masked joint path; documents states are query-independent."""

import numpy as np
import pandas as pd
import pytest
import torch

from pyterrier_mice import CrossEncoderReranker, MiceIndex, PreTTRModel, PreTTRReranker

from conftest import DOCS, QUERIES, tiny_encoder

QS = ["what is the boundary layer of a wing", "heat", "shock wave in a tunnel"]
DS = ["the boundary layer of a wing at high speed and low pressure", "plate", "wave and wind"]


def _model(kind, tokenizer, offset):
    torch.manual_seed(0)
    return PreTTRModel.from_encoder(
        tiny_encoder(kind, num_hidden_layers=4), tokenizer, 2, doc_position_offset=offset
    ).eval()


def _split(model, tokenizer, offsets=None):
    q = tokenizer(QS, padding=True, return_tensors="pt", return_token_type_ids=False)
    d = tokenizer(DS, add_special_tokens=False)["input_ids"]
    d = [x + [tokenizer.sep_token_id] for x in d]
    dmax = max(map(len, d))
    d_ids = torch.tensor([x + [0] * (dmax - len(x)) for x in d])
    d_mask = torch.tensor([[1] * len(x) + [0] * (dmax - len(x)) for x in d])
    qs = model.encode_queries(q["input_ids"], q["attention_mask"])
    ds = model.encode_documents(d_ids, d_mask, offsets)
    ql, dl = q["attention_mask"].sum(1), d_mask.sum(1)
    return model.join([qs[i, : ql[i]] for i in range(3)], [ds[i, : dl[i]] for i in range(3)])


@pytest.mark.parametrize("offset", [16, None])
def test_split_equals_joint(kind, tokenizer, offset):
    model = _model(kind, tokenizer, offset)
    joint_in = tokenizer(QS, DS, padding=True, return_tensors="pt")
    if kind == "modernbert":
        joint_in.pop("token_type_ids")
    with torch.no_grad():
        joint = model(**joint_in).logits
        if offset is None:  # positions follow the query: give each pair its offset |q| + 2
            offsets = torch.tensor([len(tokenizer(q)["input_ids"]) for q in QS])
            split = _split(model, tokenizer, offsets)
            with pytest.raises(ValueError, match="depend on the query"):
                _split(model, tokenizer)
        else:
            split = _split(model, tokenizer)
    torch.testing.assert_close(split, joint, atol=1e-5, rtol=0)


def test_fixed_offset_changes_positions_not_masks(tokenizer):
    model = _model("bert", tokenizer, 16)
    enc = tokenizer(["heat"], ["plate flow"], return_tensors="pt")
    pos = model.joint_positions(model.segments(enc["input_ids"], enc["attention_mask"]))
    assert pos[0].tolist() == [0, 1, 2, 16, 17, 18]
    long = tokenizer(["wing " * 20], ["plate"], return_tensors="pt")
    with pytest.raises(ValueError, match="longer than doc_position_offset"):
        model(**long)
    with pytest.raises(ValueError, match="fixed to prettr-2"):
        model.set_policy("mask1")


def test_reranker_index_and_joint_reranker_agree(tokenizer, tmp_path):
    _model("bert", tokenizer, 16).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    frame = pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in ["1", "2"] for d in DOCS]
    )
    split = PreTTRReranker.from_pretrained(str(tmp_path / "m"), batch_size=4)
    joint = CrossEncoderReranker.from_pretrained(str(tmp_path / "m"), batch_size=4)
    a = split(frame).set_index(["qid", "docno"])["score"]
    b = joint(frame).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(a.loc[b.index], b, atol=1e-5)
    idx = (
        MiceIndex(str(tmp_path / "idx"))
        .indexer(split, storage="fp32")
        .index([{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()])
    )
    fast = PreTTRReranker.from_pretrained(str(tmp_path / "m"), index=idx)
    c = fast(frame).set_index(["qid", "docno"])["score"]
    assert fast.last_stats["from_index"] == len(DOCS)
    np.testing.assert_allclose(c.loc[b.index], b, atol=1e-5)
    idx16 = (
        MiceIndex(str(tmp_path / "idx16"))
        .indexer(split, storage="fp16")
        .index([{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()])
    )
    half = PreTTRReranker.from_pretrained(str(tmp_path / "m"), index=idx16)
    h = half(frame).set_index(["qid", "docno"])["score"]  # fp16 memories cast in join
    assert half.last_stats["from_index"] == len(DOCS)
    np.testing.assert_allclose(h.loc[b.index], b, atol=5e-3)


def test_split_reranker_needs_fixed_offset(tokenizer):
    with pytest.raises(ValueError, match="doc_position_offset"):
        PreTTRReranker(_model("bert", tokenizer, None), tokenizer)
