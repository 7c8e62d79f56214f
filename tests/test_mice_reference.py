"""MICE in the authors' numerics: the model, its gradients and the re-ranker equal a port of the
authors' forward pass; their checkpoint layout converts with every tensor accounted for."""

import numpy as np
import pandas as pd
import pytest
import torch

from pyterrier_mice import MiceIndex, MiceModel, MiceReranker
from pyterrier_mice.models.mice.authors import AuthorsCheckpointError, convert_state_dict
from pyterrier_mice.models.mice import MiceConfig
from pyterrier_mice.models.mice import masks as mice_masks

from authors_mice import authors_model, save_checkpoint
from conftest import DOCS, QUERIES, tiny_encoder

QUERY_TEXTS = ["what is the boundary layer of a wing", "heat", "shock wave in a tunnel", "heat flow"]
DOC_TEXTS = [
    "the boundary layer of a wing at high speed and the pressure on a plate in a tunnel",
    "plate",
    "shock wave and boundary layer in the tunnel with a model",
    "wing heat",
]


@pytest.fixture
def converted(kind, tokenizer, tmp_path):
    """(the authors' model, our conversion of its checkpoint): MICE-ℓ2+3 of a 6-layer backbone, 1 layer dropped."""
    hf = tiny_encoder(kind, num_hidden_layers=6)
    hf_dir = str(tmp_path / "hf")
    hf.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    authors = authors_model(hf, merge_layer=2, drop_layer=5)
    folder = save_checkpoint(authors, str(tmp_path / "ckpt"), hf_dir, 2, 5)
    return authors, MiceModel.from_pretrained(folder).eval(), folder


def _batch(tokenizer, texts):
    b = tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)
    return b["input_ids"], b["attention_mask"]


def test_converted_checkpoint_scores_like_the_authors_model(converted, tokenizer):
    authors, ours, _ = converted
    assert ours.config.cls_cross_attention == "reference" and len(ours.interaction) == 3
    assert ours.config.unmasked_local_layers == (ours.config.backbone_type == "modernbert")
    q, d = _batch(tokenizer, QUERY_TEXTS), _batch(tokenizer, DOC_TEXTS)
    with torch.no_grad():
        expected = authors(*q, *d)
        got = ours(*q, *d).logits[:, 0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # the padded batch matters: alone, the short document scores differently
    with torch.no_grad():
        alone = ours(*_batch(tokenizer, QUERY_TEXTS[1:2]), *_batch(tokenizer, DOC_TEXTS[1:2])).logits[0, 0]
    assert abs(float(alone) - float(got[1])) > 1e-4


def _authors_name(ours_name, authors):
    """Our parameter name → the authors' (None for ModernBERT's stacked cross-attention Wqkv)."""
    for key in authors.state_dict():
        from pyterrier_mice.models.mice.authors import target_name

        if target_name(key, "bert" if hasattr(authors, "pooler") else "modernbert") == ours_name:
            return key
    return None


def test_reference_gradients_equal_the_authors(converted, tokenizer):
    """Every gradient equals the authors' (additive finfo.min masks through the softmax), including
    the cross-attention query/key, which the saturated [CLS] row still reaches."""
    authors, ours, _ = converted
    q, d = _batch(tokenizer, QUERY_TEXTS), _batch(tokenizer, DOC_TEXTS)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0])
    (authors(*q, *d) * weights).sum().backward()
    (ours(*q, *d).logits[:, 0] * weights).sum().backward()
    theirs = dict(authors.named_parameters())
    compared = 0
    for name, p in ours.named_parameters():
        key = _authors_name(name, authors)
        if key is None:  # ModernBERT: our Wqkv stacks their q_proj/k_proj/v_proj
            i = name.split(".")[1]
            g = torch.cat([theirs[f"top_layers.{i}.crossattention.{x}_proj.weight"].grad for x in "qkv"])
        else:
            g = theirs[key].grad
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, g, atol=1e-5, rtol=1e-4, msg=name)
        compared += 1
    assert compared == len(list(ours.parameters()))
    first = ours.interaction[0].cross
    qk = (
        (first.self.query.weight.grad, first.self.key.weight.grad)
        if hasattr(first, "self")
        else (first.Wqkv.weight.grad[:32], first.Wqkv.weight.grad[32:64])
    )
    assert all(float(g.abs().max()) > 1e-6 for g in qk)


def test_cls_row_gradient_equals_a_direct_masked_softmax(tokenizer):
    """The [CLS] row's cross-attention: forward uniform, gradient that of softmax(logits + finfo.min)."""
    torch.manual_seed(0)
    model = MiceModel.from_encoder(
        tiny_encoder("bert", num_hidden_layers=4), tokenizer, 2, 1, cls_cross_attention="reference"
    ).eval()
    q, d = _batch(tokenizer, QUERY_TEXTS[:2]), _batch(tokenizer, DOC_TEXTS[:2])
    qs, ds = model.encode(*q).detach(), model.encode(*d).detach()
    il = model.interaction[0]
    x, _ = model.backbone.self_attention(
        il.layer,
        il.layer_idx,
        qs,
        mice_masks.self_masks(model.config, model.backbone, model.interaction, q[1], qs.dtype)[0],
    )
    x = x.detach()

    def via_model():
        kv = model.backbone.cross_kv(il.layer, il.cross, ds)
        return model.backbone.cross_attention(
            il.layer, il.cross, x, kv, mice_masks.cross_mask(model.config, q[1], d[1], x.dtype)
        )

    def direct():
        sa, n = il.cross.self, 4
        qh = sa.query(x).view(2, -1, n, 8).transpose(1, 2)
        kh = sa.key(ds).view(2, -1, n, 8).transpose(1, 2)
        vh = sa.value(ds).view(2, -1, n, 8).transpose(1, 2)
        allowed = q[1].bool()[:, :, None] & d[1].bool()[:, None, :]
        allowed[:, 0, :] = False
        bias = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)[:, None]
        probs = torch.softmax(qh @ kh.transpose(-1, -2) / 8**0.5 + bias, dim=-1)
        assert torch.allclose(probs[:, :, 0], torch.full_like(probs[:, :, 0], 1 / ds.shape[1]))  # uniform
        return il.cross.output((probs @ vh).transpose(1, 2).reshape(2, -1, 32), x)

    grads, r = [], torch.randn(2, 32)
    for f in (via_model, direct):
        il.cross.zero_grad()
        (f()[:, 0] * r).sum().backward()
        grads.append((il.cross.self.query.weight.grad.clone(), il.cross.self.key.weight.grad.clone()))
    for a, b in zip(*grads):
        assert float(a.abs().max()) > 1e-6
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _frame(qids, docnos):
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in qids for d in docnos]
    )


def test_reranker_reproduces_the_authors_batching(converted, tokenizer):
    """Reference mode: each query's candidates in consecutive batches of reference_batch rows (frame
    order), padded; batch_size (how many sequences a forward pass holds) changes nothing."""
    authors, _, folder = converted
    rr = MiceReranker.from_pretrained(folder, reference_batch=3, batch_size=2)
    docnos = ["d1", "d5", "d3", "d12", "d6", "d4", "d9"]
    frame = _frame(["1", "3"], docnos)
    got = rr(frame).set_index(["qid", "docno"])["score"]
    for qid in ["1", "3"]:
        for start in range(0, len(docnos), 3):
            batch = docnos[start : start + 3]
            with torch.no_grad():
                expected = authors(
                    *_batch(tokenizer, [QUERIES[qid]] * len(batch)),
                    *_batch(tokenizer, [" ".join(DOCS[d]) for d in batch]),
                )
            np.testing.assert_allclose(got.loc[[(qid, d) for d in batch]].to_numpy(), expected.numpy(), atol=1e-5)


def test_authors_checkpoint_defaults_to_the_papers_batches(converted):
    _, _, folder = converted
    assert MiceReranker.from_pretrained(folder).reference_batch == 64


def test_reference_mode_refuses_an_index(converted, tmp_path):
    _, _, folder = converted
    with pytest.raises(ValueError, match="padding-invariant"):
        MiceReranker.from_pretrained(folder, index=MiceIndex(str(tmp_path / "idx")))


def test_unmapped_and_missing_tensors_are_listed(converted):
    authors, ours, _ = converted
    state = authors.state_dict()
    state["top_layers.0.extra.weight"] = torch.zeros(2)
    del state["classifier.bias"]
    with pytest.raises(AuthorsCheckpointError) as err:
        convert_state_dict(state, ours)
    assert "top_layers.0.extra.weight" in str(err.value) and "encoder.classifier.bias" in str(err.value)


def test_configs_saved_before_the_option_keep_their_behaviour():
    bb = {"model_type": "bert"}
    assert MiceConfig(backbone=bb, reference_compat=True).cls_cross_attention == "reference"
    assert MiceConfig(backbone=bb, reference_compat=False).cls_cross_attention == "none"
    with pytest.raises(ValueError, match="cls_cross_attention"):
        MiceConfig(backbone=bb, cls_cross_attention="sometimes")
