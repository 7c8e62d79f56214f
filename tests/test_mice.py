"""MICE equals a slow, unbatched reference path; round-trips; shares compute; has the paper's size."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig

from pyterrier_mice import MiceModel, MiceReranker
from pyterrier_mice.models.mice import PADDING_INVARIANT_MODES

from conftest import DOCS, QUERIES, tiny_encoder

NEG = torch.finfo(torch.float32).min


def _heads(x, n):
    return x.view(x.shape[0], x.shape[1], n, -1).transpose(1, 2)


def _cross_ctx(q, k, v, n, mode):
    """Cross-attention context; the [CLS] row per ``mode``: none (zero), mean (uniform mean of the
    values), attend (like the query tokens)."""
    qh, kh, vh = _heads(q, n), _heads(k, n), _heads(v, n)
    probs = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1]), dim=-1)
    ctx = probs @ vh
    if mode == "none":
        ctx[:, :, 0] = 0.0
    elif mode == "mean":
        ctx[:, :, 0] = vh.mean(dim=2)
    return ctx.transpose(1, 2).reshape(q.shape[0], q.shape[1], -1)


def _joint_bottom_mask(lq, ld, half_window=None):
    """Block-diagonal additive mask over the joint sequence [query ; document]."""
    seg = torch.tensor([0] * lq + [1] * ld)
    pos = torch.cat([torch.arange(lq), torch.arange(ld)])
    allowed = seg[:, None] == seg[None, :]
    if half_window is not None:
        allowed &= (pos[:, None] - pos[None, :]).abs() <= half_window
    return torch.where(allowed, 0.0, NEG)[None, None], pos[None]


def _self_mask(lq, half_window=None):
    allowed = torch.ones(lq, lq, dtype=torch.bool)
    allowed[1:, 0] = False
    if half_window is not None:
        p = torch.arange(lq)
        allowed &= (p[:, None] - p[None, :]).abs() <= half_window
    return torch.where(allowed, 0.0, NEG)[None, None]


def slow_mice(model: MiceModel, q: list, d: list) -> float:
    """One pair, no padding: the bottom layers run over the joint sequence [q ; d] with a
    block-diagonal mask and restarting positions (HF's own layer forwards); the document
    states are then frozen and the interaction layers are computed by hand (padding-invariant
    [CLS] modes)."""
    enc, cfg = model.encoder, model.encoder.config
    mode = model.config.cls_cross_attention
    n = cfg.num_attention_heads
    ids = torch.tensor([q + d])
    lq, ld = len(q), len(d)
    if cfg.model_type == "bert":
        bert = enc.bert
        mask, pos = _joint_bottom_mask(lq, ld)
        x = bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids), position_ids=pos)
        for layer in bert.encoder.layer:
            x = layer(x, attention_mask=mask)
        Q, D = x[:, :lq], x[:, lq:]
        for il in model.interaction:
            Q = il.layer.attention(Q, attention_mask=_self_mask(lq))[0]
            sa = il.cross.self
            Q = il.cross.output(_cross_ctx(sa.query(Q), sa.key(D), sa.value(D), n, mode), Q)
            Q = il.layer.output(il.layer.intermediate(Q), Q)
        return float(enc.classifier(enc.dropout(bert.pooler(Q)))[0, 0])
    mb = enc.model
    hw = lambda i: cfg.local_attention // 2 if cfg.layer_types[i] == "sliding_attention" else None
    x = mb.embeddings(input_ids=ids)
    for i, layer in enumerate(mb.layers):
        mask, pos = _joint_bottom_mask(lq, ld, hw(i))
        x = layer(x, attention_mask=mask, position_embeddings=mb.rotary_emb(x, pos, cfg.layer_types[i]))
    Q, D = x[:, :lq], x[:, lq:]
    h = cfg.hidden_size
    for il in model.interaction:
        layer, i = il.layer, il.layer_idx
        rope = mb.rotary_emb(Q, torch.arange(lq)[None], cfg.layer_types[i])
        Q = Q + layer.attn(layer.attn_norm(Q), position_embeddings=rope, attention_mask=_self_mask(lq, hw(i)))[0]
        W = il.cross.Wqkv.weight
        qn, dn = layer.attn_norm(Q), layer.attn_norm(D)
        Q = Q + il.cross.Wo(_cross_ctx(qn @ W[:h].T, dn @ W[h : 2 * h].T, dn @ W[2 * h :].T, n, mode))
        Q = Q + layer.mlp(layer.mlp_norm(Q))
    return float(enc.classifier(enc.drop(enc.head(mb.final_norm(Q)[:, 0])))[0, 0])


def _model(kind, tokenizer, ls=2, k=2, **kw):
    torch.manual_seed(1)
    model = MiceModel.from_encoder(tiny_encoder(kind, num_hidden_layers=6), tokenizer, ls, k, **kw).eval()
    # make the seeded cross-attention differ from self-attention, as after training
    with torch.no_grad():
        for il in model.interaction:
            for p in il.cross.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model


def _batch(tokenizer, texts):
    return tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)


@pytest.mark.parametrize("mode", PADDING_INVARIANT_MODES)
def test_equals_slow_reference_path(kind, mode, tokenizer):
    model = _model(kind, tokenizer, cls_cross_attention=mode)
    queries = ["what is the boundary layer of a wing", "heat", "shock wave"]
    docs = [
        "the boundary layer of a wing at high speed and the pressure on a plate in a tunnel",
        "plate",
        "shock wave and boundary layer in the tunnel with a model",
    ]
    q, d = _batch(tokenizer, queries), _batch(tokenizer, docs)
    with torch.no_grad():
        fast = model(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"]).logits[:, 0]
        slow = [slow_mice(model, tokenizer(a)["input_ids"], tokenizer(b)["input_ids"]) for a, b in zip(queries, docs)]
    torch.testing.assert_close(fast, torch.tensor(slow), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", PADDING_INVARIANT_MODES)
def test_states_path_without_projections_equals_projected_keys_and_values(kind, mode, tokenizer):
    """At inference, interacting with document states gives the scores of projecting them to
    keys/values first (1e-5), and on BERT never runs the cross-attention's key/value projections
    over the documents; with autograd on, the projecting path runs and gives the same scores."""
    # 2 heads of 64: the shape where not projecting needs fewer FLOPs for these lengths
    torch.manual_seed(1)
    encoder = tiny_encoder(kind, num_hidden_layers=4, hidden_size=128, num_attention_heads=2)
    model = MiceModel.from_encoder(encoder, tokenizer, 2, 2, cls_cross_attention=mode).eval()
    q = _batch(tokenizer, ["what is the boundary layer of a wing", "heat", "shock wave"])
    d = _batch(
        tokenizer,
        [
            "the boundary layer of a wing at high speed and the pressure on a plate in a tunnel",
            "plate",
            "shock wave and boundary layer in the tunnel with a model",
        ],
    )
    calls = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[1]))
        for il in (model.interaction if kind == "bert" else [])
        for m in (il.cross.self.key, il.cross.self.value)
    ]
    with torch.no_grad():
        qs = model.encode_queries(q["input_ids"], q["attention_mask"])
        ds = model.encode_documents(d["input_ids"], d["attention_mask"])
        projected = model.interact(qs, q["attention_mask"], d["attention_mask"], doc_kv=model.document_kv(ds))
        calls.clear()
        fast = model.interact(qs, q["attention_mask"], d["attention_mask"], doc_states=ds)
    torch.testing.assert_close(fast, projected, atol=1e-5, rtol=0)
    if kind == "bert":
        assert ds.shape[1] not in calls, "the documents were projected to keys/values"
    with torch.enable_grad():
        trained = model.interact(qs, q["attention_mask"], d["attention_mask"], doc_states=ds)
    assert kind != "bert" or ds.shape[1] in calls
    torch.testing.assert_close(trained.detach(), projected, atol=1e-5, rtol=0)
    for h in hooks:
        h.remove()


def test_every_interaction_order_has_one_schedule():
    from pyterrier_mice.models.mice import INTERACTIONS, SCHEDULES

    assert tuple(SCHEDULES) == INTERACTIONS


def test_exact_match_from_states_equals_stored_values(kind, tokenizer):
    """The exact-match head read from document states (inference: averaged, then projected once per
    query token) gives the scores of reading its stored per-position values (1e-5), without
    projecting the document positions; with autograd on, the projecting path gives the same."""
    torch.manual_seed(2)
    model = MiceModel.from_encoder(
        tiny_encoder(kind, num_hidden_layers=4), tokenizer, 2, 2, exact_match_heads=True, interaction="cross_first"
    ).eval()
    q = _batch(tokenizer, ["boundary layer of a wing", "heat plate"])
    d = _batch(tokenizer, ["the boundary layer of a wing in a tunnel and a plate", "plate heat"])
    ids = {"query_ids": q["input_ids"], "doc_ids": d["input_ids"].masked_fill(d["attention_mask"] == 0, -2)}
    projected = []
    hooks = [
        il.exact_match.v_proj.register_forward_hook(lambda mod, inp, out: projected.append(inp[0].shape[1]))
        for il in model.interaction
    ]
    with torch.no_grad():
        qs = model.encode_queries(q["input_ids"], q["attention_mask"])
        ds = model.encode_documents(d["input_ids"], d["attention_mask"])
        stored = model.interact(qs, q["attention_mask"], d["attention_mask"], doc_kv=model.document_kv(ds), **ids)
        projected.clear()
        fast = model.interact(qs, q["attention_mask"], d["attention_mask"], doc_states=ds, **ids)
    torch.testing.assert_close(fast, stored, atol=1e-5, rtol=0)
    assert ds.shape[1] not in projected, "the document positions went through the exact-match projection"
    with torch.enable_grad():
        trained = model.interact(qs, q["attention_mask"], d["attention_mask"], doc_states=ds, **ids)
    assert ds.shape[1] in projected
    torch.testing.assert_close(trained.detach(), stored, atol=1e-5, rtol=0)
    for h in hooks:
        h.remove()


def test_cross_attention_seeded_from_self_attention(kind, tokenizer):
    model = MiceModel.from_encoder(tiny_encoder(kind, num_hidden_layers=6), tokenizer, 2, 3)
    for il in model.interaction:
        self_attn = model.backbone.attention_module(il.layer)
        for (n1, p1), (n2, p2) in zip(self_attn.named_parameters(), il.cross.named_parameters()):
            assert n1 == n2 and torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()
    assert len(model.backbone.layers) == 2 and len(model.interaction) == 3
    assert [il.layer_idx for il in model.interaction] == [2, 3, 4]


def test_save_load_identical(kind, tokenizer, tmp_path):
    model = _model(kind, tokenizer)
    model.save_pretrained(tmp_path)
    loaded = MiceModel.from_pretrained(tmp_path).eval()
    assert loaded.config.first_interaction_layer == 2 and len(loaded.interaction) == 2
    q, d = _batch(tokenizer, ["heat flow", "wing"]), _batch(tokenizer, ["plate heat", "a wing in the wind"])
    with torch.no_grad():
        a = model(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"]).logits
        b = loaded(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"]).logits
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_parameter_count_minilm_l12_shape(tokenizer):
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=1536,
        num_labels=1,
    )
    model = MiceModel.from_encoder(AutoModelForSequenceClassification.from_config(cfg), tokenizer, 4, 3)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 26.3e6) <= 0.2e6, n


def test_from_cross_encoder_checkpoint_keeps_head(tokenizer, tmp_path):
    hf = tiny_encoder("bert", num_hidden_layers=6)
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = MiceModel.from_backbone(str(tmp_path), 2, None)
    assert len(model.interaction) == 4  # ℓ2 + all
    assert torch.equal(model.encoder.classifier.weight, hf.classifier.weight)
    with pytest.raises(ValueError, match="do not fit"):
        MiceModel.from_backbone(str(tmp_path), 5, 3)


def _reranker(kind, tokenizer, tmp_path, **kw):
    _model(kind, tokenizer, **kw).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return MiceReranker.from_pretrained(str(tmp_path), batch_size=3)


def _frame(qids, docnos):
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in qids for d in docnos]
    )


@pytest.mark.parametrize("mode", PADDING_INVARIANT_MODES)
def test_reranker_matches_model_and_is_padding_invariant(kind, mode, tokenizer, tmp_path):
    rr = _reranker(kind, tokenizer, tmp_path, cls_cross_attention=mode)
    out = rr(_frame(["1", "3"], list(DOCS))).set_index(["qid", "docno"])["score"]
    with torch.no_grad():
        for (q, d), s in out.iloc[[0, 5, 13]].items():
            slow = slow_mice(rr.model, tokenizer(QUERIES[q])["input_ids"], tokenizer(" ".join(DOCS[d]))["input_ids"])
            assert abs(s - slow) < 1e-5
    long_doc = _frame(["1"], ["d1"]).assign(docno="long", text="wing " * 60)
    mixed = rr(pd.concat([_frame(["1"], ["d5"]), long_doc])).set_index("docno")["score"]
    assert abs(mixed["d5"] - out[("1", "d5")]) < 1e-5


def test_reference_mode_depends_on_padding(tokenizer, tmp_path):
    rr = _reranker("bert", tokenizer, tmp_path, cls_cross_attention="reference")
    alone = rr(_frame(["1"], ["d5"]))["score"].iloc[0]
    long_doc = _frame(["1"], ["d1"]).assign(docno="long", text="wing " * 60)
    mixed = rr(pd.concat([_frame(["1"], ["d5"]), long_doc])).set_index("docno")["score"]["d5"]
    assert abs(alone - mixed) > 1e-6  # float noise is ~1e-7


def test_each_query_and_document_encoded_once(tokenizer, tmp_path):
    rr = _reranker("bert", tokenizer, tmp_path)
    rows = []
    original = rr.model.encode_queries

    def counting(input_ids, attention_mask):
        rows.append(input_ids.shape[0])
        return original(input_ids, attention_mask)

    rr.model.encode_queries = rr.model.encode_documents = counting
    frame = _frame(["1", "2", "3"], ["d1", "d2", "d3", "d4", "d5"])
    frame = pd.concat([frame, frame.assign(qid=frame["qid"] + "b")])  # same query texts, new qids
    rr(frame)
    assert sum(rows) == 3 + 5  # 3 distinct queries and 5 distinct documents, not 30 pairs


@pytest.mark.minilm
def test_minilm_mice_runs(minilm_path):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = MiceModel.from_backbone(minilm_path, 2, 2)
    rr = MiceReranker(model, AutoTokenizer.from_pretrained(minilm_path), model_name="minilm-mice")
    out = rr(_frame(["1"], ["d1", "d5"]))
    assert np.isfinite(out["score"]).all()
    with torch.no_grad():
        s = slow_mice(
            model.eval(), rr.tokenizer(QUERIES["1"])["input_ids"], rr.tokenizer(" ".join(DOCS["d1"]))["input_ids"]
        )
    assert abs(out.set_index("docno")["score"]["d1"] - s) < 1e-4


def test_joint_interaction_with_the_cross_encoders_document_form_is_the_cross_encoder(kind, tokenizer):
    """MICE-ℓ(L-1)+1 with the joint interaction, documents as the cross-encoder's segment (d [SEP],
    token type 1, positions from |q|+2), [CLS] attending and query tokens reading [CLS] computes
    exactly the cross-encoder under prettr-(L-1): in the last layer the query side reads document
    states that no layer above ℓ* has updated, in both models."""
    from pyterrier_mice import MaskedCrossEncoderModel
    from pyterrier_mice.rerankers.text import InputBuilder

    hf = tiny_encoder(kind, num_hidden_layers=4, seed=3)
    queries = ["heat flow on a plate", "shock wave in a tunnel"]  # the same number of tokens
    q_tok = [tokenizer(q, add_special_tokens=False)["input_ids"] for q in queries]
    assert len(q_tok[0]) == len(q_tok[1])
    docs = ["the boundary layer of a wing at high speed", "plate heat", "a wing in a wind tunnel test"]
    d_tok = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in docs]
    mice = MiceModel.from_encoder(
        hf,
        tokenizer,
        3,
        1,
        interaction="joint",
        cls_cross_attention="attend",
        query_reads_cls=True,
        doc_cls=False,
        doc_token_type=1,
        doc_position_offset=len(q_tok[0]) + 2,
    ).eval()
    ce = MaskedCrossEncoderModel.from_encoder(
        tiny_encoder(kind, num_hidden_layers=4, seed=3), tokenizer, "prettr-3"
    ).eval()
    build = InputBuilder(tokenizer)
    pairs = [build.pair(q, d, 128) for q in q_tok for d in d_tok]
    batch = build.batch([p[0] for p in pairs], [p[1] for p in pairs] if kind == "bert" else None)
    qb = build.batch([[build.cls, *q, build.sep] for q in q_tok for _ in d_tok])
    db = build.batch([[*d, build.sep] for _ in q_tok for d in d_tok])
    with torch.no_grad():
        expected = ce(**batch).logits[:, 0]
        got = mice(qb["input_ids"], qb["attention_mask"], db["input_ids"], db["attention_mask"]).logits[:, 0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "options",
    [
        dict(interaction="joint", cls_cross_attention="attend", query_reads_cls=True),
        dict(doc_cls=False, doc_token_type=1, doc_position_offset=20),
    ],
)
def test_cross_encoder_like_options_from_the_index(options, tokenizer, tmp_path):
    """The derivation options keep documents precomputable: index (with K/V) = on the fly."""
    from pyterrier_mice import MiceIndex

    torch.manual_seed(2)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2, **options).save_pretrained(
        tmp_path
    )
    tokenizer.save_pretrained(tmp_path)
    fly = MiceReranker.from_pretrained(str(tmp_path), batch_size=3)
    corpus = [{"docno": d, "text": " ".join(t)} for d, t in DOCS.items()]
    for kv in (False, True):
        idx = MiceIndex(str(tmp_path / f"idx{kv}")).indexer(fly, kv=kv, storage="fp32").index(corpus)
        rr = MiceReranker.from_pretrained(str(tmp_path), batch_size=3, index=idx)
        frame = _frame(["1", "2"], list(DOCS))
        np.testing.assert_allclose(rr(frame)["score"], fly(frame)["score"], atol=1e-5)
