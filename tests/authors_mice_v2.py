"""A port, for tests only, of the MICE authors' newer model (``MiceCrossEncoder``:
``BertMiceCrossEncoder`` and ``ModernBertMiceCrossEncoder``, ``src/MICE/modeling/mice.py`` of
xpmir/mice at b4dc361), written from reading it and independent of the package.

It keeps their module names (``state_dict()`` is their checkpoint's), their additive
``finfo.min`` masks over padded batches, eager attention throughout (their configs get
``_attn_implementation="eager"``), HF ``BertLayer`` decoder layers for BERT and their own
ModernBERT cross-attention layer, and the transformers-5 behaviour of ModernBERT layers called
with a mask (no sliding window). ``save_hub_folder`` writes what their ``save_pretrained``
writes: ``TorchHFHub`` over an ``xpm_torch`` ``SimpleModuleLoader``."""

import copy
import json
import os

import torch
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer
from transformers.models.modernbert.modeling_modernbert import (
    ModernBertAttention,
    ModernBertEncoderLayer,
    ModernBertMLP,
    ModernBertRotaryEmbedding,
)

#: their ``MiceCrossEncoder`` parameters and the class defaults
OPTIONS = {
    "n_contextualization_layers": 6,
    "n_docs_ctx_layers": None,
    "n_interaction_layers": None,
    "bound_bottom_layers": True,
    "cross_attn_first": True,
    "mask_cls_to_doc": False,
    "mask_query_to_cls": True,
    "freeze_base": False,
    "random_top_layers": False,
    "global_cls_token": False,
    "extra_attn_bias": False,
    "lexical_bias": False,
    "compress_dim": 1.0,
}


def _additive(allowed):
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)


def _heads(x, head_dim):
    return x.view(*x.shape[:-1], -1, head_dim).transpose(1, 2)


def _merge(x):
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


def _eager(cfg):
    cfg = copy.deepcopy(cfg)
    cfg._attn_implementation = "eager"
    return cfg


def exact_match_mask(q_ids, d_ids):
    """Their ``compute_mask``: 0 where the query token's id equals the document token's (padding
    and special tokens included), -inf elsewhere; a row without any match reads column 0."""
    match = q_ids[:, :, None] == d_ids[:, None, :]
    match[:, :, 0] |= ~match.any(dim=-1)
    return torch.zeros(match.shape).masked_fill(~match, float("-inf"))[:, None]


class ExactMatchHead(nn.Module):
    """Their ``ExactMatchAttentionHead`` (zero queries and keys: uniform over the allowed columns)."""

    def __init__(self, hidden):
        super().__init__()
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.out_proj = nn.Linear(hidden, hidden, bias=False)

    def forward(self, doc, mask):
        weights = torch.softmax(mask[:, 0], dim=-1)
        return self.out_proj(weights @ self.v_proj(doc))


class _Base(nn.Module):
    def __init__(self, tokenizer, options):
        super().__init__()
        self.o = {**OPTIONS, **options}
        self.special_ids = sorted(tokenizer.all_special_ids)

    def self_mask(self, mask):
        valid = mask.bool()[:, None, :, None] & mask.bool()[:, None, None, :]
        if self.o["mask_query_to_cls"]:
            valid[:, :, 1:, 0] = False
        return _additive(valid)

    def cross_mask(self, qmask, dmask):
        valid = qmask.bool()[:, :, None] & dmask.bool()[:, None, :]
        if self.o["mask_cls_to_doc"]:
            valid[:, 0, :] = False
        return _additive(valid[:, None])

    def lexical_mask(self, q_ids, d_ids):
        special = torch.tensor(self.special_ids)
        match = (
            (q_ids[:, :, None] == d_ids[:, None, :])
            & ~torch.isin(q_ids, special)[:, :, None]
            & ~torch.isin(d_ids, special)[:, None, :]
        )
        return match[:, None]

    def with_global_cls(self, x, mask):
        if not self.o["global_cls_token"]:
            return x, mask
        return (
            torch.cat([self.global_cls.expand(x.shape[0], -1, -1), x], dim=1),
            torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1),
        )

    def query_layers(self):
        return self.bottom_layers if self.o["bound_bottom_layers"] else self.query_bottom_layers

    def document_layers(self):
        return self.bottom_layers if self.o["bound_bottom_layers"] else self.document_bottom_layers


class AuthorsBertMice(_Base):
    def __init__(self, hf, tokenizer, **options):
        super().__init__(tokenizer, options)
        o, cfg = self.o, hf.config
        base = _eager(cfg)
        head = _eager(cfg)
        head.is_decoder, head.add_cross_attention = True, True
        c = float(o["compress_dim"])
        if c > 1:
            head.hidden_size = int(head.hidden_size / c)
            head.intermediate_size = int(head.intermediate_size / c)
            head.num_attention_heads = int(head.num_attention_heads / c)
            self.adapter = nn.Linear(cfg.hidden_size, head.hidden_size)
        else:
            self.adapter = None
        self.base_config, self.head_config = base, head
        layers, n = hf.bert.encoder.layer, o["n_contextualization_layers"]

        def seeded(i):
            layer = BertLayer(base)
            layer.load_state_dict(layers[i].state_dict())
            return layer

        self.embeddings = copy.deepcopy(hf.bert.embeddings)
        if o["bound_bottom_layers"]:
            self.bottom_layers = nn.ModuleList(seeded(i) for i in range(n))
        else:
            self.query_bottom_layers = nn.ModuleList(seeded(i) for i in range(n))
            nd = o["n_docs_ctx_layers"] if o["n_docs_ctx_layers"] is not None else n
            self.document_bottom_layers = nn.ModuleList(seeded(i) for i in range(nd))
        k = o["n_interaction_layers"] if o["n_interaction_layers"] is not None else len(layers) - n
        tops = []
        for i in range(k):
            top = BertLayer(head)
            if c <= 1:  # seeded from layer n + i; the cross-attention from its self-attention
                src = layers[n + i]
                for name in ("attention", "intermediate", "output"):
                    getattr(top, name).load_state_dict(getattr(src, name).state_dict())
                top.crossattention.load_state_dict(src.attention.state_dict())
            tops.append(top)
        self.top_layers = nn.ModuleList(tops)
        if o["extra_attn_bias"]:
            self.exact_match_heads = nn.ModuleList(ExactMatchHead(head.hidden_size) for _ in range(k))
        self.pooler = copy.deepcopy(hf.bert.pooler)
        if c > 1:
            self.pooler.dense = nn.Linear(head.hidden_size, head.hidden_size)
        self.dropout_layer = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(head.hidden_size, 1)
        if o["global_cls_token"]:
            self.global_cls = nn.Parameter(
                hf.bert.embeddings.word_embeddings.weight[tokenizer.cls_token_id].detach().clone().view(1, 1, -1)
            )

    def encode(self, ids, mask, layers):
        x = self.embeddings(input_ids=ids)
        ext = _additive(mask.bool()[:, None, None, :])
        for layer in layers:
            x = layer(x, ext)
        return x

    def forward(self, q_ids, q_mask, d_ids, d_mask):
        o = self.o
        x = self.encode(q_ids, q_mask, self.query_layers())
        x, q_mask = self.with_global_cls(x, q_mask)
        doc = self.encode(d_ids, d_mask, self.document_layers())
        sm, cm = self.self_mask(q_mask), self.cross_mask(q_mask, d_mask)
        em = exact_match_mask(q_ids, d_ids) if o["extra_attn_bias"] else None
        if self.adapter is not None:
            x, doc = self.adapter(x), self.adapter(doc)
        last = len(self.top_layers) - 1
        for i, top in enumerate(self.top_layers):
            if em is not None:
                x = x + self.exact_match_heads[i](doc, em)
            if o["cross_attn_first"]:
                x = top.crossattention(hidden_states=x, encoder_hidden_states=doc, encoder_attention_mask=cm)[0]
                x = top.attention(x, sm)[0]
                if i == last:
                    x = x[:, :1]
                x = top.output(top.intermediate(x), x)
            elif i == last:
                x = top.attention(x, sm)[0][:, :1]
                if not o["mask_cls_to_doc"]:
                    x = top.crossattention(
                        hidden_states=x, encoder_hidden_states=doc, encoder_attention_mask=cm[:, :, :1]
                    )[0]
                x = top.output(top.intermediate(x), x)
            else:
                x = top(hidden_states=x, attention_mask=sm, encoder_hidden_states=doc, encoder_attention_mask=cm)
        return self.classifier(self.dropout_layer(self.pooler(x))).squeeze(-1)


class _ModernBertCross(nn.Module):
    """Their ``ModernBertCrossAttention``: separate q/k/v projections, a per-head lexical bias."""

    def __init__(self, cfg, lexical_bias):
        super().__init__()
        h, bias = cfg.hidden_size, cfg.attention_bias
        self.head_dim = h // cfg.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(h, h, bias=bias) for _ in range(3))
        self.Wo = nn.Linear(h, h, bias=bias)
        self.out_drop = nn.Identity()
        if lexical_bias:
            self.lexical_bias_weight = nn.Parameter(torch.zeros(cfg.num_attention_heads))

    def forward(self, query, key, value, mask, lexical=None):
        q, k, v = (
            _heads(p(t), self.head_dim) for p, t in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        if lexical is not None and hasattr(self, "lexical_bias_weight"):
            mask = mask + self.lexical_bias_weight.view(1, -1, 1, 1) * lexical.float()
        probs = torch.softmax(q @ k.transpose(-1, -2) * self.head_dim**-0.5 + mask, dim=-1, dtype=torch.float32)
        return self.out_drop(self.Wo(_merge(probs @ v)))


class _ModernBertTop(nn.Module):
    def __init__(self, cfg, layer_id, lexical_bias):
        super().__init__()
        self.attn_norm = (
            nn.Identity() if layer_id == 0 else nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=cfg.norm_bias)
        )
        self.attn = ModernBertAttention(cfg, layer_idx=layer_id)
        self.crossattention = _ModernBertCross(cfg, lexical_bias)
        self.mlp_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=cfg.norm_bias)
        self.mlp = ModernBertMLP(cfg)
        self.attention_type = cfg.layer_types[layer_id]

    def self_attention(self, x, mask, rope):
        return x + self.attn(self.attn_norm(x), attention_mask=mask, position_embeddings=rope)[0]

    def cross_attention(self, x, doc, mask, lexical):
        d = self.attn_norm(doc)
        return x + self.crossattention(self.attn_norm(x), d, d, mask, lexical)

    def feed_forward(self, x):
        return x + self.mlp(self.mlp_norm(x))


class AuthorsModernBertMice(_Base):
    def __init__(self, hf, tokenizer, pooling_method=None, **options):
        super().__init__(tokenizer, options)
        o, cfg = self.o, _eager(hf.config)
        self.base_config = cfg
        self.head_config = copy.deepcopy(cfg)
        self.head_config.is_decoder, self.head_config.add_cross_attention = True, True
        self.pooling_method = pooling_method
        layers, n = hf.model.layers, o["n_contextualization_layers"]

        def seeded(i):
            layer = ModernBertEncoderLayer(cfg, i)
            layer.load_state_dict(layers[i].state_dict())
            return layer

        self.rotary_emb = ModernBertRotaryEmbedding(cfg)
        self.embeddings = copy.deepcopy(hf.model.embeddings)
        if o["bound_bottom_layers"]:
            self.bottom_layers = nn.ModuleList(seeded(i) for i in range(n))
        else:
            self.query_bottom_layers = nn.ModuleList(seeded(i) for i in range(n))
            nd = o["n_docs_ctx_layers"] if o["n_docs_ctx_layers"] is not None else n
            self.document_bottom_layers = nn.ModuleList(seeded(i) for i in range(nd))
        k = o["n_interaction_layers"] if o["n_interaction_layers"] is not None else len(layers) - n
        tops = []
        for i in range(k):
            top = _ModernBertTop(cfg, n + i, o["lexical_bias"])
            src = layers[n + i]
            for name in ("attn_norm", "attn", "mlp_norm", "mlp"):
                getattr(top, name).load_state_dict(getattr(src, name).state_dict())
            h = cfg.hidden_size
            with torch.no_grad():
                for j, proj in enumerate(
                    (top.crossattention.q_proj, top.crossattention.k_proj, top.crossattention.v_proj)
                ):
                    proj.weight.copy_(src.attn.Wqkv.weight[j * h : (j + 1) * h])
                top.crossattention.Wo.load_state_dict(src.attn.Wo.state_dict())
            tops.append(top)
        self.top_layers = nn.ModuleList(tops)
        if o["extra_attn_bias"]:
            self.exact_match_heads = nn.ModuleList(ExactMatchHead(cfg.hidden_size) for _ in range(k))
        self.final_norm = copy.deepcopy(hf.model.final_norm)
        self.head = copy.deepcopy(hf.head)
        self.dropout_layer = nn.Dropout(cfg.classifier_dropout)
        self.classifier = nn.Linear(cfg.hidden_size, 1)
        if o["global_cls_token"]:
            self.global_cls = nn.Parameter(
                hf.model.embeddings.tok_embeddings.weight[tokenizer.cls_token_id].detach().clone().view(1, 1, -1)
            )

    @property
    def pooling(self):
        return self.pooling_method or getattr(self.base_config, "classifier_pooling", "cls")

    def ropes(self, x, length):
        pos = torch.arange(length)[None].expand(x.shape[0], length)
        return {t: self.rotary_emb(x, pos, layer_type=t) for t in set(self.base_config.layer_types)}

    def encode(self, ids, mask, layers):
        x = self.embeddings(input_ids=ids)
        ext, rope = _additive(mask.bool()[:, None, None, :]), self.ropes(x, ids.shape[1])
        for layer in layers:
            x = layer(x, ext, position_embeddings=rope[layer.attention_type])
        return x

    def forward(self, q_ids, q_mask, d_ids, d_mask):
        o = self.o
        x = self.encode(q_ids, q_mask, self.query_layers())
        x, q_mask = self.with_global_cls(x, q_mask)
        rope = self.ropes(x, q_mask.shape[1])
        doc = self.encode(d_ids, d_mask, self.document_layers())
        sm, cm = self.self_mask(q_mask), self.cross_mask(q_mask, d_mask)
        em = exact_match_mask(q_ids, d_ids) if o["extra_attn_bias"] else None
        lex = self.lexical_mask(q_ids, d_ids) if o["lexical_bias"] else None
        last, cls = len(self.top_layers) - 1, self.pooling == "cls"
        for i, top in enumerate(self.top_layers):
            if em is not None:
                x = x + self.exact_match_heads[i](doc, em)
            r = rope[top.attention_type]
            if o["cross_attn_first"]:
                x = top.cross_attention(x, doc, cm, lex)
                x = top.self_attention(x, sm, r)
                if i == last and cls:
                    x = x[:, :1]
            elif i == last and cls:
                x = top.self_attention(x, sm, r)[:, :1]
                if not o["mask_cls_to_doc"]:
                    x = top.cross_attention(x, doc, cm[:, :, :1], None if lex is None else lex[:, :, :1])
            else:
                x = top.self_attention(x, sm, r)
                x = top.cross_attention(x, doc, cm, lex)
            x = top.feed_forward(x)
        x = self.final_norm(x)
        pooled = x[:, 0] if cls else x.mean(dim=1)
        return self.classifier(self.dropout_layer(self.head(pooled))).squeeze(-1)


def authors_model(hf, tokenizer, seed=1, **options):
    """The authors' newer MICE around a random HF encoder, seeded from it as their init tasks do;
    then every weight is perturbed (as after training: cross-attention ≠ self-attention, a lexical
    bias ≠ 0, exact-match heads that matter)."""
    cls = AuthorsBertMice if hf.config.model_type == "bert" else AuthorsModernBertMice
    torch.manual_seed(seed)
    model = cls(hf, tokenizer, **options).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if name.endswith("lexical_bias_weight") else 0.05
            p.add_(torch.randn_like(p) * scale)
    return model


def save_hub_folder(
    model,
    folder,
    hf_id,
    tokenizer,
    *,
    definition="experimaestro.json",
    wrapped=False,
    max_length=4096,
    max_query_length=None,
    max_doc_length=None,
):
    """The folder their ``save_pretrained`` (``TorchHFHub`` over ``SimpleModuleLoader``) writes:

    - the serialized definition (``experimaestro.json``; ``definition.json`` with older
      experimaestro): tokenizer, model and loader objects, the loader last; its ``path`` field
      is a ``path.serialized`` pointing at ``path/``;
    - ``path/``: the checkpoint folder (``save_model``): ``model.safetensors``, the tokenizer,
      ``contextualization_layers/config.json`` and ``interaction_layers/config.json``;
    - ``config.json``, ``head/config.json``, the tokenizer and ``README.md`` (``write_hub_extras``).
    """
    from safetensors.torch import save_file

    os.makedirs(os.path.join(folder, "path"), exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(folder, "path", "model.safetensors")
    )
    for target in (os.path.join(folder, "path"), folder):
        tokenizer.save_pretrained(target)
    model.base_config.save_pretrained(os.path.join(folder, "path", "contextualization_layers"))
    model.head_config.save_pretrained(os.path.join(folder, "path", "interaction_layers"))
    model.base_config.save_pretrained(folder)
    model.head_config.save_pretrained(os.path.join(folder, "head"))
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("---\nlibrary_name: transformers\n---\n# a MICE model\n")
    kind = "BertMiceCrossEncoder" if isinstance(model, AuthorsBertMice) else "ModernBertMiceCrossEncoder"
    tok = {
        "id": 1,
        "module": "MICE.modeling.mice",
        "type": "MICEQueryDocTokenizer",
        "typename": "mice.modeling.mice.micequerydoctokenizer",
        "identifier": {"main": "0" * 64},
        "fields": {
            "model_id": hf_id,
            "max_length": max_length,
            "max_query_length": max_query_length,
            "max_doc_length": max_doc_length,
        },
    }
    fields = {"hf_id": hf_id, "tokenizer": {"type": "python", "value": 1}, **model.o, "doc": None, "bibtex": None}
    if kind.startswith("Modern"):
        fields["pooling_method"] = model.pooling_method
    mdl = {
        "id": 2,
        "module": "MICE.modeling.mice",
        "type": kind,
        "typename": f"mice.modeling.mice.{kind.lower()}",
        "identifier": {"main": "1" * 64},
        "fields": fields,
    }
    loader = {
        "id": 3,
        "module": "xpm_torch.module",
        "type": "SimpleModuleLoader",
        "typename": "xpm_torch.module.simplemoduleloader",
        "identifier": {"main": "2" * 64},
        "fields": {
            "value": {"type": "python", "value": 2},
            "path": {"type": "path.serialized", "value": "path", "is_folder": True},
        },
    }
    objects = [tok, mdl, loader]
    with open(os.path.join(folder, definition), "w") as f:
        json.dump({"objects": objects, "data": {"type": "python", "value": 3}} if wrapped else objects, f)
    return folder


__all__ = ["AuthorsBertMice", "AuthorsModernBertMice", "authors_model", "save_hub_folder", "BertConfig"]
