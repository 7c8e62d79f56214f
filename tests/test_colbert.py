"""ColBERT: scores equal a direct MaxSim over the embeddings; both input forms; round-trip; size."""

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig

from pyterrier_mice import ColBERTModel, ColBERTReranker, MiceIndex

from conftest import DOCS, QUERIES, tiny_encoder


def _reranker(tokenizer, tmp_path, form="standard", kind="bert"):
    torch.manual_seed(0)
    model = ColBERTModel.from_encoder(
        tiny_encoder(kind), tokenizer, dim=16, query_max_length=12, doc_max_length=40, input_form=form
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return ColBERTReranker.from_pretrained(str(tmp_path), batch_size=3)


def _frame():
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in ["1", "4"] for d in DOCS]
    )


@pytest.mark.parametrize("form", ["standard", "reference"])
def test_scores_equal_direct_maxsim(form, kind, tokenizer, tmp_path):
    rr = _reranker(tokenizer, tmp_path, form, kind)
    out = rr(_frame()).set_index(["qid", "docno"])["score"]
    cfg, tok = rr.model.config, tokenizer
    for (q, d), score in out.iloc[::5].items():
        qids = tok(QUERIES[q], add_special_tokens=False)["input_ids"]
        dids = tok(" ".join(DOCS[d]), add_special_tokens=False)["input_ids"]
        if form == "standard":
            qseq = [tok.cls_token_id, cfg.query_marker_id] + qids + [tok.sep_token_id]
            qseq += [tok.mask_token_id] * (cfg.query_max_length - len(qseq))
            qmask = [1] * cfg.query_max_length
            dseq = [tok.cls_token_id, cfg.doc_marker_id] + dids + [tok.sep_token_id]
        else:
            qseq = [tok.cls_token_id] + qids + [tok.sep_token_id]
            qmask = [1] * len(qseq) + [0] * (cfg.query_max_length - len(qseq))
            qseq += [tok.mask_token_id] * (cfg.query_max_length - len(qseq))  # PyLate pads with [MASK]
            dseq = [tok.cls_token_id] + dids + [tok.sep_token_id]
        with torch.no_grad():
            qe = rr.model.encode(torch.tensor([qseq]), torch.tensor([qmask]))[0]
            de = rr.model.encode(torch.tensor([dseq]), torch.ones(1, len(dseq), dtype=torch.long))[0]
        assert torch.allclose(qe.norm(dim=-1), torch.ones(len(qseq)), atol=1e-5)
        direct = sum(max(float(qe[i] @ de[j]) for j in range(len(dseq))) for i in range(cfg.query_max_length))
        assert abs(score - direct) < 1e-4


def test_reference_query_ids_are_padded_with_mask(tokenizer, tmp_path):
    """The reference form pads a query to query_max_length with [MASK] ids under attention mask 0 (PyLate)."""
    rr = _reranker(tokenizer, tmp_path, "reference")
    seqs = rr.query_sequences(["heat flow"])
    seen = {}
    original = rr.model.encode

    def capture(ids, mask):
        seen["ids"], seen["mask"] = ids, mask
        return original(ids, mask)

    rr.model.encode = capture
    rr.encode_queries(seqs)
    body = [
        tokenizer.cls_token_id,
        *tokenizer("heat flow", add_special_tokens=False)["input_ids"],
        tokenizer.sep_token_id,
    ]
    n = rr.query_max_length
    assert seen["ids"][0].tolist() == body + [tokenizer.mask_token_id] * (n - len(body))
    assert seen["mask"][0].tolist() == [1] * len(body) + [0] * (n - len(body))
    assert tokenizer.mask_token_id != tokenizer.pad_token_id


def test_save_load_and_index(tokenizer, tmp_path):
    rr = _reranker(tokenizer, tmp_path / "m")
    again = ColBERTReranker.from_pretrained(str(tmp_path / "m"))
    a, b = rr(_frame()), again(_frame())
    np.testing.assert_allclose(
        a["score"], b["score"], rtol=1e-6, atol=1e-6
    )  # reloaded: equal to fp32 rounding (seen: 2 ulp, 1.9e-6 at 8.5, under load)
    idx = (
        MiceIndex(str(tmp_path / "idx"))
        .indexer(rr, storage="fp32")
        .index([{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()])
    )
    fast = ColBERTReranker.from_pretrained(str(tmp_path / "m"), index=idx)
    c = fast(_frame())
    assert fast.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    np.testing.assert_allclose(c["score"], a["score"], atol=1e-5)


def test_missing_markers_are_an_error(tmp_path):
    from transformers import BertTokenizerFast

    (tmp_path / "v.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]))
    tok = BertTokenizerFast(str(tmp_path / "v.txt"))
    with pytest.raises(ValueError, match="input_form='reference'"):
        ColBERTModel.from_encoder(tiny_encoder("bert", vocab_size=7), tok)
    ColBERTModel.from_encoder(tiny_encoder("bert", vocab_size=7), tok, input_form="reference")


def test_parameter_count_minilm_l12_shape(tokenizer):
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=1536,
        num_labels=1,
    )
    model = ColBERTModel.from_encoder(AutoModelForSequenceClassification.from_config(cfg), tokenizer)
    n = sum(p.numel() for p in model.parameters())
    # paper: 33.4M, which also counts MiniLM's pooler (0.15M), unused by ColBERT and dropped here
    pooler = 384 * 384 + 384
    assert abs(n + pooler - 33.4e6) <= 0.05e6, n
