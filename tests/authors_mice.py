"""A port, for tests only, of the MICE authors' forward pass (xpmir/mice,
``src/models/midFusion_modeling.py``: ``MiniLMMidFusionCrossEncoder`` and
``EttinMidFusionCrossEncoder``), written from their description and independent of the package:
their module names (so ``state_dict()`` is in their checkpoint layout), their additive
``finfo.min`` masks, padded batches, eager attention in MiniLM's top layers and SDPA elsewhere,
and Ettin's unmasked local layers. ``save_checkpoint`` writes the ``xpm_torch`` folder layout
(``definition.json`` + ``parameters``, the file named after the loader's field)."""

import copy
import json
import os

import torch
import torch.nn.functional as F
from torch import nn


def _heads(x, n):
    return x.view(x.shape[0], x.shape[1], n, -1).transpose(1, 2)


def _merge(x):
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


def _additive(allowed, dtype):
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def _out(x):
    return x[0] if isinstance(x, tuple) else x


class AuthorsMice(nn.Module):
    """Shared mask helpers (``get_*_attention_mask`` in the authors' code)."""

    mask_cls_to_doc = True
    mask_query_to_cls = True

    def extended_mask(self, mask, dtype):  # [B, 1, 1, L]
        return _additive(mask.bool()[:, None, None, :], dtype)

    def self_mask(self, mask, dtype):  # [B, 1, L, L]
        m = mask.bool()
        valid = m[:, None, :, None] & m[:, None, None, :]
        if self.mask_query_to_cls:
            valid[:, :, 1:, 0] = False
        return _additive(valid, dtype)

    def cross_mask(self, qmask, dmask, dtype):  # [B, 1, Lq, Ld]
        valid = qmask.bool()[:, :, None] & dmask.bool()[:, None, :]
        if self.mask_cls_to_doc:
            valid[:, 0, :] = False
        return _additive(valid[:, None], dtype)


class _BertTop(nn.Module):
    """A decoder ``BertLayer``'s modules: attention, crossattention (seeded from attention), FFN."""

    def __init__(self, layer):
        super().__init__()
        self.attention = copy.deepcopy(layer.attention)
        self.crossattention = copy.deepcopy(layer.attention)
        self.intermediate = copy.deepcopy(layer.intermediate)
        self.output = copy.deepcopy(layer.output)


def _bert_eager(attn, x, memory, mask, heads):
    """HF BERT eager attention: softmax(q·kᵀ/√d + mask)·v, then output dense + LayerNorm."""
    sa = attn.self
    q, k, v = _heads(sa.query(x), heads), _heads(sa.key(memory), heads), _heads(sa.value(memory), heads)
    probs = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + mask, dim=-1)
    return attn.output(_merge(probs @ v), x)


class AuthorsMiniLM(AuthorsMice):
    def __init__(self, hf, merge_layer, drop_layer=0):
        super().__init__()
        bert, cfg = hf.bert, hf.config
        layers = bert.encoder.layer
        self.embeddings = copy.deepcopy(bert.embeddings)
        self.bottom_layers = nn.ModuleList(copy.deepcopy(layers[:merge_layer]))
        self.top_layers = nn.ModuleList(_BertTop(layer) for layer in layers[merge_layer : drop_layer or len(layers)])
        self.pooler = copy.deepcopy(bert.pooler)
        self.dropout_layer = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(cfg.hidden_size, 1)
        self.heads = cfg.num_attention_heads

    def bottom(self, ids, mask):
        x = self.embeddings(input_ids=ids)
        ext = self.extended_mask(mask, x.dtype)
        for layer in self.bottom_layers:
            x = _out(layer(x, attention_mask=ext))
        return x

    def forward(self, q_ids, q_mask, d_ids, d_mask):
        x, doc = self.bottom(q_ids, q_mask), self.bottom(d_ids, d_mask)
        sm, cm = self.self_mask(q_mask, x.dtype), self.cross_mask(q_mask, d_mask, x.dtype)
        for top in self.top_layers:
            x = _bert_eager(top.attention, x, x, sm, self.heads)
            x = _bert_eager(top.crossattention, x, doc, cm, self.heads)
            x = top.output(top.intermediate(x), x)
        return self.classifier(self.dropout_layer(self.pooler(x))).squeeze(-1)


class _EttinCross(nn.Module):
    def __init__(self, attn, hidden, bias):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(hidden, hidden, bias=bias) for _ in range(3))
        self.Wo = copy.deepcopy(attn.Wo)
        self.out_drop = copy.deepcopy(attn.out_drop)
        with torch.no_grad():
            for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
                proj.weight.copy_(attn.Wqkv.weight[i * hidden : (i + 1) * hidden])
                if bias:
                    proj.bias.copy_(attn.Wqkv.bias[i * hidden : (i + 1) * hidden])


class _EttinTop(nn.Module):
    def __init__(self, layer, hidden, bias):
        super().__init__()
        self.attn_norm = copy.deepcopy(layer.attn_norm)
        self.attn = copy.deepcopy(layer.attn)
        self.crossattention = _EttinCross(layer.attn, hidden, bias)
        self.mlp_norm = copy.deepcopy(layer.mlp_norm)
        self.mlp = copy.deepcopy(layer.mlp)


class AuthorsEttin(AuthorsMice):
    def __init__(self, hf, merge_layer, drop_layer=0):
        super().__init__()
        mb, cfg = hf.model, hf.config
        self.cfg, self.rope = cfg, mb.rotary_emb
        self.embeddings = copy.deepcopy(mb.embeddings)
        self.bottom_layers = nn.ModuleList(copy.deepcopy(mb.layers[:merge_layer]))
        self.top_layers = nn.ModuleList(
            _EttinTop(layer, cfg.hidden_size, cfg.attention_bias)
            for layer in mb.layers[merge_layer : drop_layer or len(mb.layers)]
        )
        self.final_norm = copy.deepcopy(mb.final_norm)
        self.head = copy.deepcopy(hf.head)
        self.dropout_layer = nn.Dropout(cfg.classifier_dropout)
        self.classifier = nn.Linear(cfg.hidden_size, 1)
        self.merge_layer = merge_layer

    def _self_attention(self, attn, h, mask, layer_idx):
        """ModernBERT attention (SDPA); local layers get no mask (the authors' sliding_window_mask=None)."""
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        cfg, n = self.cfg, self.cfg.num_attention_heads
        hd = cfg.hidden_size
        qkv = attn.Wqkv(h)
        q, k, v = (_heads(qkv[..., i * hd : (i + 1) * hd], n) for i in range(3))
        cos, sin = self.rope(h, torch.arange(h.shape[1])[None], cfg.layer_types[layer_idx])
        q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)
        if cfg.layer_types[layer_idx] == "sliding_attention":
            mask = None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return attn.out_drop(attn.Wo(_merge(out)))

    def bottom(self, ids, mask):
        x = self.embeddings(input_ids=ids)
        ext = self.extended_mask(mask, x.dtype)
        for i, layer in enumerate(self.bottom_layers):
            x = x + self._self_attention(layer.attn, layer.attn_norm(x), ext, i)
            x = x + layer.mlp(layer.mlp_norm(x))
        return x

    def forward(self, q_ids, q_mask, d_ids, d_mask):
        x, doc = self.bottom(q_ids, q_mask), self.bottom(d_ids, d_mask)
        sm, cm = self.self_mask(q_mask, x.dtype), self.cross_mask(q_mask, d_mask, x.dtype)
        n = self.cfg.num_attention_heads
        for i, top in enumerate(self.top_layers):
            x = x + self._self_attention(top.attn, top.attn_norm(x), sm, self.merge_layer + i)
            enc, c = top.attn_norm(doc), top.crossattention
            q, k, v = _heads(c.q_proj(top.attn_norm(x)), n), _heads(c.k_proj(enc), n), _heads(c.v_proj(enc), n)
            x = x + c.out_drop(c.Wo(_merge(F.scaled_dot_product_attention(q, k, v, attn_mask=cm))))
            x = x + top.mlp(top.mlp_norm(x))
        pooled = self.final_norm(x)[:, 0]
        return self.classifier(self.dropout_layer(self.head(pooled))).squeeze(1)


def authors_model(hf, merge_layer, drop_layer=0, seed=1):
    """The authors' MICE around a random HF encoder; the cross-attention is then perturbed so that
    it differs from the self-attention it was seeded from (as after training)."""
    cls = AuthorsMiniLM if hf.config.model_type == "bert" else AuthorsEttin
    torch.manual_seed(seed)
    model = cls(hf, merge_layer, drop_layer).eval()
    with torch.no_grad():
        for top in model.top_layers:
            for p in top.crossattention.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model


def save_checkpoint(model, folder, hf_id, merge_layer, drop_layer=0, **fields):
    """The ``xpm_torch`` folder layout: ``definition.json`` (experimaestro objects: the model with its
    parameters, and the loader pointing at the weights) and ``parameters``: experimaestro stores a
    data path under its field's name, so ``xpmTorchHubModule.Loader.parameters`` becomes a file
    named ``parameters``, with no extension."""
    os.makedirs(folder, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(folder, "parameters"))
    kind = "MiniLMMidFusionCrossEncoder" if isinstance(model, AuthorsMiniLM) else "EttinMidFusionCrossEncoder"
    model_obj = {
        "id": 1,
        "module": "models.midFusion_modeling",
        "type": kind,
        "typename": f"models.midFusion_modeling.{kind.lower()}",
        "identifier": "0" * 64,
        "fields": {
            "hf_id": hf_id,
            "merge_layer": merge_layer,
            "drop_layer": drop_layer,
            "mask_cls_to_doc": True,
            "mask_query_to_cls": True,
            "use_self_attention": True,
            "freeze_base": False,
            "random_top_layers": False,
            "compress_dim": 1.0,
            **fields,
        },
    }
    loader_obj = {
        "id": 2,
        "module": "xpm_torch.xpmModel",
        "type": "xpmTorchHubModule.Loader",
        "typename": "xpm_torch.xpmmodel.loader",
        "identifier": "1" * 64,
        "fields": {
            "model": {"type": "python", "value": 1},
            "parameters": {"type": "path.serialized", "value": "parameters", "is_folder": False},
        },
    }
    with open(os.path.join(folder, "definition.json"), "w") as f:
        json.dump(
            {
                "objects": [model_obj, loader_obj],
                "data": [{"type": "python", "value": 1}, [{"type": "python", "value": 2}]],
            },
            f,
        )
    return folder
