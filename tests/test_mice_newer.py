"""The authors' newer MICE (``MiceCrossEncoder``): every option, loaded from the folder their
``save_pretrained`` writes, scores (and back-propagates) as a port of their model does; the
re-ranker and a document-state index (with and without K/V) serve it; a hub id resolves from a
local cache. The port is :mod:`authors_mice_v2` (tests only, independent of the package)."""

import inspect
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from pyterrier_mice import MiceIndex, MiceModel, MiceReranker
from pyterrier_mice.models.mice.authors import AuthorsCheckpointError, convert_state_dict
from pyterrier_mice.models.mice.authors import target_name
from pyterrier_mice.models.mice import MiceConfig

from authors_mice_v2 import authors_model, save_hub_folder
from conftest import DOCS, QUERIES, tiny_encoder

QUERY_TEXTS = ["what is the boundary layer of a wing", "heat", "shock wave in a tunnel", "heat flow on a plate"]
DOC_TEXTS = [
    "the boundary layer of a wing at high speed and the pressure on a plate in a tunnel",
    "plate",
    "shock wave and boundary layer in the tunnel with a model",
    "wing heat flow",
]

# each a combination of the authors' options (MICE-ℓ2+3 of a 6-layer backbone unless said)
COMBOS = {
    "defaults": {},
    "self-attention first": {"cross_attn_first": False},
    "[CLS] blocked": {"mask_cls_to_doc": True},
    "[CLS] blocked, self first": {"mask_cls_to_doc": True, "cross_attn_first": False},
    "query reads [CLS]": {"mask_query_to_cls": False},
    "global [CLS]": {"global_cls_token": True},
    "exact match + lexical": {"extra_attn_bias": True, "lexical_bias": True},
    "exact match, self first, blocked": {
        "extra_attn_bias": True,
        "lexical_bias": True,
        "cross_attn_first": False,
        "mask_cls_to_doc": True,
    },
    "unbound, deeper documents": {"bound_bottom_layers": False, "n_docs_ctx_layers": 3},
    "unbound": {"bound_bottom_layers": False},
    "every layer above": {"n_interaction_layers": None},
    "compressed (BERT) / mean pooling (ModernBERT)": {"compress_dim": 2.0},
}


def _options(kind, combo):
    options = {"n_contextualization_layers": 2, "n_interaction_layers": 3, **COMBOS[combo]}
    if kind == "modernbert" and "compress_dim" in options:
        options.pop("compress_dim")
        options["pooling_method"] = "mean"
    return options


def _authors(kind, tokenizer, tmp_path, combo="defaults", **save):
    hf = tiny_encoder(kind, num_hidden_layers=6)
    hf_dir = str(tmp_path / "hf")
    hf.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    options = _options(kind, combo)
    pooling = options.pop("pooling_method", None)
    extra = {"pooling_method": pooling} if pooling else {}
    authors = authors_model(hf, tokenizer, **options, **extra)
    folder = save_hub_folder(authors, str(tmp_path / "mice"), hf_dir, tokenizer, **save)
    return authors, folder


def _batch(tokenizer, texts):
    b = tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)
    return b["input_ids"], b["attention_mask"]


@pytest.mark.parametrize("combo", list(COMBOS))
def test_every_option_scores_as_the_authors_model(kind, combo, tokenizer, tmp_path):
    """Loaded from their hub layout, each option combination scores a padded batch of mixed
    queries as their model does; saved by this package and reloaded, it still does."""
    authors, folder = _authors(kind, tokenizer, tmp_path, combo)
    ours = MiceModel.from_pretrained(folder)
    q, d = _batch(tokenizer, QUERY_TEXTS), _batch(tokenizer, DOC_TEXTS)
    with torch.no_grad():
        expected = authors(*q, *d)
        got = ours(*q, *d).logits[:, 0]
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
    ours.save_pretrained(str(tmp_path / "ours"))
    reloaded = MiceModel.from_pretrained(str(tmp_path / "ours")).eval()
    options = [
        k for k in inspect.signature(MiceConfig.__init__).parameters if k not in ("self", "kwargs", "reference_compat")
    ]
    assert {k: getattr(reloaded.config, k) for k in options} == {k: getattr(ours.config, k) for k in options}
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*q, *d).logits[:, 0], got, atol=1e-6, rtol=0)


def test_options_are_recorded(kind, tokenizer, tmp_path):
    _, folder = _authors(kind, tokenizer, tmp_path, "exact match, self first, blocked")
    cfg = MiceModel.from_pretrained(folder).config
    assert (cfg.interaction, cfg.cls_cross_attention, cfg.skip_last_cls_cross, cfg.exact_match_heads) == (
        "sequential",
        "reference",
        True,
        True,
    )
    assert cfg.lexical_bias == (kind == "modernbert")  # their BERT has no lexical-bias weights
    assert cfg.first_interaction_layer == 2 and cfg.interaction_layers == 3
    assert cfg.authors_checkpoint["architecture"] == "MiceCrossEncoder"
    assert cfg.local_window == (kind == "bert")  # theirs: no sliding window on ModernBERT's local layers


@pytest.mark.parametrize(
    "combo", ["defaults", "exact match + lexical", "[CLS] blocked", "global [CLS]", "unbound, deeper documents"]
)
def test_gradients_equal_the_authors(kind, combo, tokenizer, tmp_path):
    authors, folder = _authors(kind, tokenizer, tmp_path, combo)
    ours = MiceModel.from_pretrained(folder)
    q, d = _batch(tokenizer, QUERY_TEXTS), _batch(tokenizer, DOC_TEXTS)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0])
    (authors(*q, *d) * weights).sum().backward()
    (ours(*q, *d).logits[:, 0] * weights).sum().backward()
    theirs = {target_name(k, kind): p for k, p in authors.named_parameters()}
    compared = 0
    for name, p in ours.named_parameters():
        if name.endswith("cross.Wqkv.weight"):  # ModernBERT: our Wqkv stacks their q_proj/k_proj/v_proj
            i = name.split(".")[1]
            own = dict(authors.named_parameters())
            g = torch.cat([own[f"top_layers.{i}.crossattention.{x}_proj.weight"].grad for x in "qkv"])
        else:
            g = theirs[name].grad
        if g is None:  # unused by their forward (e.g. the last layer's parts that [CLS] never reads)
            assert p.grad is None or float(p.grad.abs().max()) == 0, name
        else:
            torch.testing.assert_close(p.grad, g, atol=2e-5, rtol=1e-4, msg=name)
        compared += 1
    assert compared == len(list(ours.parameters()))


def _frame(qids, docnos):
    return pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(DOCS[d])} for q in qids for d in docnos]
    )


def _scores(reranker, frame):
    """The re-ranker's scores in the frame's row order (it returns them ranked)."""
    out = reranker(frame).set_index(["qid", "docno"])["score"]
    return out.loc[list(zip(frame["qid"], frame["docno"]))].to_numpy()


def _expected(authors, tokenizer, frame):
    """Their score of each row of the frame, every pair alone (padding-invariant models)."""
    out = []
    with torch.no_grad():
        for _, r in frame.iterrows():
            out.append(float(authors(*_batch(tokenizer, [r["query"]]), *_batch(tokenizer, [r["text"]]))[0]))
    return np.array(out)


@pytest.mark.parametrize(
    "combo",
    [
        "defaults",
        "exact match + lexical",
        "global [CLS]",
        "unbound, deeper documents",
        "compressed (BERT) / mean pooling (ModernBERT)",
    ],
)
def test_index_equals_on_the_fly(kind, combo, tokenizer, tmp_path):
    """The re-ranker scores as their model scores each pair; from an index of document states, and
    of per-layer keys/values (plus the exact-match values), the scores are the same."""
    authors, folder = _authors(kind, tokenizer, tmp_path, combo)
    frame = _frame(["1", "3", "4"], ["d1", "d3", "d4", "d5", "d10", "d11"])
    plain = MiceReranker.from_pretrained(folder)
    if not plain.model.config.padding_invariant:  # their mean over padded positions: score it as 'mean'
        assert combo.startswith("compressed") and kind == "modernbert"
        with pytest.raises(ValueError, match="padded_mean"):
            MiceIndex(str(tmp_path / "x")).indexer(plain)
        plain = MiceReranker(MiceModel.from_pretrained(folder, pooling="mean"), plain.tokenizer)
    on_the_fly = _scores(plain, frame)
    np.testing.assert_allclose(on_the_fly, _expected(authors, tokenizer, frame), atol=2e-5)
    corpus = [{"docno": d, "text": " ".join(DOCS[d])} for d in DOCS]
    for kv in (False, True):
        path = str(tmp_path / f"idx-{kv}")
        index = MiceIndex(path).indexer(plain, kv=kv, storage="fp32").index(corpus)
        assert index.has_token_ids == plain.model.config.uses_token_ids
        rr = MiceReranker(plain.model, plain.tokenizer, index=path)
        got = _scores(rr, frame)
        assert rr.last_stats == {"encoded": 0, "from_index": 6}
        np.testing.assert_allclose(got, on_the_fly, atol=1e-5, err_msg=f"kv={kv}")


def test_reference_mode_reranker_reproduces_their_batches(kind, tokenizer, tmp_path):
    """[CLS] blocked (their uniform row over the padded document batch): each query's candidates are
    scored in consecutive batches of reference_batch rows, as they evaluate."""
    authors, folder = _authors(kind, tokenizer, tmp_path, "[CLS] blocked")
    rr = MiceReranker.from_pretrained(folder, reference_batch=3)
    assert not rr.model.config.padding_invariant
    docnos = ["d1", "d5", "d3", "d12", "d6", "d4", "d9"]
    got = rr(_frame(["1", "3"], docnos)).set_index(["qid", "docno"])["score"]
    for qid in ["1", "3"]:
        for start in range(0, len(docnos), 3):
            batch = docnos[start : start + 3]
            with torch.no_grad():
                expected = authors(
                    *_batch(tokenizer, [QUERIES[qid]] * len(batch)),
                    *_batch(tokenizer, [" ".join(DOCS[d]) for d in batch]),
                )
            np.testing.assert_allclose(got.loc[[(qid, d) for d in batch]].to_numpy(), expected.numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="padding-invariant"):
        MiceReranker.from_pretrained(folder, index=MiceIndex(str(tmp_path / "idx")))


def test_older_experimaestro_definition_is_read(kind, tokenizer, tmp_path):
    """``definition.json`` holding ``{"objects": [...], "data": ...}`` (experimaestro's serialize)."""
    authors, folder = _authors(kind, tokenizer, tmp_path, "defaults", definition="definition.json", wrapped=True)
    assert not os.path.exists(os.path.join(folder, "experimaestro.json"))
    q, d = _batch(tokenizer, QUERY_TEXTS), _batch(tokenizer, DOC_TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(
            MiceModel.from_pretrained(folder)(*q, *d).logits[:, 0], authors(*q, *d), atol=2e-5, rtol=0
        )


def test_lengths_come_from_their_tokenizer(tokenizer, tmp_path):
    _, folder = _authors("bert", tokenizer, tmp_path, max_query_length=16, max_doc_length=40)
    rr = MiceReranker.from_pretrained(folder)
    assert (rr.query_max_length, rr.doc_max_length) == (16, 40)
    _, folder = _authors("bert", tokenizer, tmp_path / "b")  # their default 4096, capped at the positions
    assert MiceReranker.from_pretrained(folder).doc_max_length == 128


def test_hub_id_resolves_from_a_local_cache(tokenizer, tmp_path, monkeypatch):
    """``xpmir/Mice-tiny`` from a hub cache (offline): the id is resolved and loaded like the folder."""
    import huggingface_hub.constants as hub

    authors, folder = _authors("bert", tokenizer, tmp_path, "exact match + lexical")
    cache = tmp_path / "hub"
    repo = cache / "models--xpmir--Mice-tiny"
    shutil.copytree(folder, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    frame = _frame(["1", "2"], ["d1", "d3", "d12"])
    by_id = _scores(MiceReranker.from_pretrained("xpmir/Mice-tiny"), frame)
    np.testing.assert_allclose(by_id, _expected(authors, tokenizer, frame), atol=2e-5)
    model = MiceModel.from_pretrained("xpmir/Mice-tiny")
    assert model.config.exact_match_heads


def test_unmapped_and_missing_tensors_are_listed(tokenizer, tmp_path):
    authors, folder = _authors("modernbert", tokenizer, tmp_path, "exact match + lexical")
    ours = MiceModel.from_pretrained(folder)
    state = authors.state_dict()
    state["top_layers.0.crossattention.extra.weight"] = torch.zeros(2)
    del state["exact_match_heads.1.v_proj.weight"]
    with pytest.raises(AuthorsCheckpointError) as err:
        convert_state_dict(state, ours)
    message = str(err.value)
    assert "top_layers.0.crossattention.extra.weight" in message
    assert "interaction.1.exact_match.v_proj.weight" in message


def test_missing_weights_and_other_backbones_are_named(tokenizer, tmp_path):
    _, folder = _authors("bert", tokenizer, tmp_path)
    os.remove(os.path.join(folder, "path", "model.safetensors"))
    with pytest.raises(AuthorsCheckpointError, match="no weights"):
        MiceModel.from_pretrained(folder)
    with open(os.path.join(folder, "path", "contextualization_layers", "config.json")) as f:
        config = json.load(f)
    config["model_type"] = "electra"
    for name in ("config.json", os.path.join("path", "contextualization_layers", "config.json")):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(config, f)
    with pytest.raises(AuthorsCheckpointError, match="only their BERT and ModernBERT"):
        MiceModel.from_pretrained(folder)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"global_cls": True, "exact_match_heads": True}, "global_cls cannot be combined"),
        (
            {"interaction": "joint", "cls_cross_attention": "attend", "lexical_bias": True, "special_token_ids": [0]},
            "interaction='joint'",
        ),
        ({"shared_bottom_layers": True, "doc_layers": 3}, "shared_bottom_layers=False"),
        ({"skip_last_cls_cross": True, "interaction": "cross_first"}, "skip_last_cls_cross"),
        ({"pooling": "max"}, "pooling='max'"),
        ({"lexical_bias": True}, "special_token_ids"),
        ({"compress_dim": 2.0, "backbone": {"model_type": "modernbert"}}, "BERT backbones"),
    ],
)
def test_undefined_combinations_are_refused(options, message):
    options = {"backbone": {"model_type": "bert"}, "first_interaction_layer": 2, **options}
    with pytest.raises(ValueError, match=message):
        MiceConfig(**options)


def test_options_from_a_backbone_round_trip(kind, tokenizer, tmp_path):
    """The newer options on a model of this package (built from a cross-encoder), saved and reloaded."""
    hf = tiny_encoder(kind, num_hidden_layers=6)
    options = dict(
        interaction="cross_first",
        cls_cross_attention="attend",
        exact_match_heads=True,
        lexical_bias=True,
        shared_bottom_layers=False,
        doc_layers=3,
        local_window=False,
    )
    if kind == "bert":
        options["compress_dim"] = 2.0
    model = MiceModel.from_encoder(hf, tokenizer, 2, 3, **options).eval()
    model.save_pretrained(str(tmp_path / "m"))
    reloaded = MiceModel.from_pretrained(str(tmp_path / "m")).eval()
    q, d = _batch(tokenizer, QUERY_TEXTS), _batch(tokenizer, DOC_TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*q, *d).logits, model(*q, *d).logits, atol=1e-6, rtol=0)
    assert len(reloaded.query_layers) == 2 and len(reloaded.backbone.layers) == 3
    with pytest.raises(ValueError, match="token ids"):
        model.interact(model.encode_queries(*q), q[1], d[1], doc_states=model.encode_documents(*d))


def test_their_training_checkpoint_folder_is_refused_saying_what_to_load(tokenizer, tmp_path):
    """Their ``save_model`` folder (``path/`` of the hub folder: weights, tokenizer and the two
    sub-configs, without the options the model was built with) cannot be read alone; the message
    says so and names the folder to load instead."""
    _, folder = _authors("bert", tokenizer, tmp_path)
    checkpoint = os.path.join(folder, "path")
    for load in (MiceModel.from_pretrained, MiceReranker.from_pretrained):
        with pytest.raises(AuthorsCheckpointError) as err:
            load(checkpoint)
        message = str(err.value)
        assert len(message.splitlines()) == 1, message
        assert checkpoint in message and "training checkpoint" in message and repr(folder) in message, message
    alone = str(tmp_path / "alone")
    shutil.copytree(checkpoint, alone)  # without the hub folder around it
    with pytest.raises(AuthorsCheckpointError, match="training checkpoint.*experimaestro.json"):
        MiceModel.from_pretrained(alone)
