"""Which part of converting a cross-encoder into MICE loses what the cross-encoder knows.

    python experiments/conversion.py --from runs/cranfield_ce/final --dataset cranfield \\
        --first-layer 3 --interaction-layers 2 --k 50 --out experiments/results/conversion_cranfield

Every variant is built from the cross-encoder without training (its head kept) and differs from
the paper's conversion (the first row) in the options named in its row, so each row measures one
part of the conversion; the last row applies every cross-encoder-like option at once. For each:
nDCG@10 on the test split (BM25 top-k re-ranked), and on training groups (a judged positive and
BM25 negatives of the train split) how well the converted scores keep the cross-encoder's: their
Pearson correlation, the fraction of (positive, negative) pairs ordered as the cross-encoder orders
them, and the mean margin positive − negative next to the cross-encoder's.
"""

import argparse
import json
import os
import warnings

import numpy as np
import pandas as pd

from pyterrier_mice import CrossEncoderReranker, MiceModel, MiceReranker
from pyterrier_mice.evaluation.datasets import BeirFolder
from pyterrier_mice.evaluation import paper_table, per_query, to_markdown
from pyterrier_mice.evaluation.experiment import open_dataset, rerank_experiment, system_identity
from pyterrier_mice.models.checkpoints import num_backbone_layers
from pyterrier_mice.models.checkpoints import load_tokenizer
from pyterrier_mice.training import beir_groups


def variants(offset: int, total: int, ls: int, k: int) -> dict[str, dict]:
    """name → MiceModel options (and layer counts) for each part of the conversion."""
    doc_form = dict(doc_cls=False, doc_token_type=1, doc_position_offset=offset)
    joint = dict(interaction="joint", cls_cross_attention="attend")
    full_k = total - ls
    paper = dict(cls_cross_attention="none")
    rows = {
        "paper conversion (sequential, [CLS] none)": {},
        "[CLS] mean": dict(cls_cross_attention="mean"),
        "[CLS] attend": dict(cls_cross_attention="attend"),
        "query tokens read [CLS]": dict(query_reads_cls=True),
        f"document as the CE's segment (d [SEP], type 1, positions from {offset})": doc_form,
        "joint interaction ([CLS] none)": dict(interaction="joint"),
        "joint interaction + [CLS] attend": joint,
        f"no layer dropped (ℓ{ls}+{full_k})": dict(interaction_layers=full_k),
        "all cross-encoder-like options": dict(**joint, **doc_form, query_reads_cls=True, interaction_layers=full_k),
    }
    return {name: {**paper, **options} for name, options in rows.items()}


def agreement(teacher: np.ndarray, student: np.ndarray, n_docs: int) -> dict:
    """How ``student`` scores of groups (positive first) keep ``teacher``'s judgements."""
    t, s = teacher.reshape(-1, n_docs), student.reshape(-1, n_docs)
    same_order = np.sign(t[:, :1] - t[:, 1:]) == np.sign(s[:, :1] - s[:, 1:])
    return {
        "pearson": float(np.corrcoef(t.ravel(), s.ravel())[0, 1]),
        "pairs as CE": float(same_order.mean()),
        "margin": float((s[:, :1] - s[:, 1:]).mean()),
        "CE margin": float((t[:, :1] - t[:, 1:]).mean()),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", required=True, help="the cross-encoder checkpoint")
    ap.add_argument(
        "--dataset",
        default="cranfield",
        help="BEIR-layout folder (train split for groups, test for nDCG; default: the bundled cranfield)",
    )
    ap.add_argument("--first-layer", type=int, default=3)
    ap.add_argument("--interaction-layers", type=int, default=2)
    ap.add_argument("--doc-position-offset", type=int, help="default: the median length of [CLS] q [SEP] (train)")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--groups", type=int, default=200, help="training groups for the agreement columns")
    ap.add_argument("--query-max-length", type=int, default=32)
    ap.add_argument("--doc-max-length", type=int, default=128)
    ap.add_argument("--work", default="runs/conversion")
    ap.add_argument("--out", required=True, help="prefix of the .md/.csv outputs")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated.*")

    tok = load_tokenizer(args.source)
    ce = CrossEncoderReranker.from_pretrained(args.source, batch_size=64)
    folder = BeirFolder(args.dataset)
    train_q = folder.get_topics("train")["query"]
    # the cross-encoder puts document token 0 at |q| + 2, i.e. at the length of [CLS] q [SEP]
    offset = args.doc_position_offset or int(np.median([len(tok(q)["input_ids"]) for q in train_q]))
    total = num_backbone_layers(args.source)
    lengths = dict(query_max_length=args.query_max_length, doc_max_length=args.doc_max_length)
    systems = {"cross-encoder": (ce, system_identity(ce, args.source))}
    for name, options in variants(offset, total, args.first_layer, args.interaction_layers).items():
        options = dict(options)
        k = options.pop("interaction_layers", args.interaction_layers)
        model = MiceModel.from_backbone(args.source, args.first_layer, k, **options)
        rr = MiceReranker(model, tok, batch_size=64, **lengths)
        systems[name] = (
            rr,
            system_identity(
                rr, args.source, "untrained MICE", args.first_layer, k, json.dumps(options, sort_keys=True)
            ),
        )

    groups = beir_groups(folder, "train", os.path.join(args.work, "groups"), k=100, negatives=3, seed=0).groups
    groups = groups[: args.groups]
    queries = [g.query for g in groups for _ in g.docs]
    docs = [d for g in groups for d in g.docs]
    teacher = ce.score_pairs(queries, docs)
    rows = {}
    for name, (rr, _) in systems.items():
        rows[name] = agreement(teacher, rr.score_pairs(queries, docs), len(groups[0].docs))

    ds = open_dataset(args.dataset, "test")
    res = rerank_experiment(
        ds, {n: s for n, s in systems.items()}, k=args.k, work=os.path.join(args.work, "experiments")
    )
    table = paper_table({ds.label: res}, "nDCG@10", "cross-encoder")
    table.columns = [f"nDCG@10 {ds.label} test"]
    extra = pd.DataFrame(rows).T.reindex(table.index)
    for col in extra.columns:
        table[col] = extra[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    header = (
        f"MICE-ℓ{args.first_layer}+{args.interaction_layers} built from {args.source} without training; "
        f"nDCG@10 ×100 on BM25 top-{args.k} ({len(ds.topics)} test queries; ↑/↓: differs from the "
        f"cross-encoder, paired t-test, Holm); agreement with the cross-encoder on {len(groups)} training groups "
        f"(positive + 3 BM25 negatives)"
    )
    text = header + "\n\n" + to_markdown(table) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".md", "w") as f:
        f.write(text)
    per_query(res, "nDCG@10").to_csv(args.out + "_perquery.csv")
    print("\n" + text)
    return table


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
