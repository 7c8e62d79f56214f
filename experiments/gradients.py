"""Why a model learns slowly from the same data: at initialisation, how spread its scores are within
a training group and how much gradient one batch of the loss sends into each part of the model.

    python experiments/gradients.py --backbone $M --dataset cranfield \\
        --model type=cross-encoder,max_length=128 \\
        --model type=mice,first_interaction_layer=3,interaction_layers=2,cls_cross_attention=none \\
        --model type=mice,first_interaction_layer=3,interaction_layers=2,cls_cross_attention=mean

Each ``--model`` is a set of ``model.*`` training-config values (MICE lengths default to 32/128).
Prints, per model: the InfoNCE loss, the mean standard deviation of the scores within a group
(positive + 3 BM25 negatives), and the gradient norm reaching the embeddings, the encoder layers
(for MICE: its bottom layers), MICE's interaction layers and cross-attention, the pooler and the
classifier (summed over ``--groups`` groups in batches of 8, dropout off).
"""

import argparse
import os
import warnings

import torch

from pyterrier_mice.evaluation.datasets import BeirFolder
from pyterrier_mice.evaluation import to_markdown
from pyterrier_mice.training import TrainConfig, beir_groups, build_reranker
from pyterrier_mice.training.losses import infonce

PARTS = ["embeddings", "encoder layers", "interaction self/FFN", "cross-attention", "pooler", "classifier"]


def part(name: str) -> str:
    if "classifier" in name:
        return "classifier"
    if "pooler" in name:
        return "pooler"
    if ".cross." in name:
        return "cross-attention"
    if name.startswith("interaction"):
        return "interaction self/FFN"
    return "embeddings" if "embeddings" in name else "encoder layers"


def measure(rr, groups) -> dict:
    model = rr.model
    model.eval()  # no dropout: the gradient of the loss itself
    model.zero_grad()
    losses = []
    for i in range(0, len(groups), 8):
        gs = groups[i : i + 8]
        scores = rr.forward_pairs([g.query for g in gs for _ in g.docs], [d for g in gs for d in g.docs])
        loss = infonce(scores.view(len(gs), -1))
        loss.backward()
        losses.append(float(loss))
    norms = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            norms[part(name)] = norms.get(part(name), 0.0) + float(p.grad.norm() ** 2)
    with torch.no_grad():
        s = rr.forward_pairs([g.query for g in groups for _ in g.docs], [d for g in groups for d in g.docs])
    spread = float(s.view(len(groups), -1).std(dim=1).mean())
    return {
        "loss": sum(losses) / len(losses),
        "score s.d. in a group": spread,
        **{p: norms[p] ** 0.5 for p in PARTS if p in norms},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True)
    ap.add_argument(
        "--dataset", default="cranfield", help="a BEIR-layout folder (its train split; default: the bundled cranfield)"
    )
    ap.add_argument("--model", action="append", required=True, help="KEY=VALUE[,KEY=VALUE…] of model.*")
    ap.add_argument("--groups", type=int, default=64)
    ap.add_argument("--work", default="runs/gradients")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    groups = beir_groups(
        BeirFolder(args.dataset), "train", os.path.join(args.work, "groups"), k=100, negatives=3, seed=0
    ).groups[: args.groups]
    rows = {}
    for spec in args.model:
        values = dict(kv.split("=", 1) for kv in spec.split(","))
        if values.get("type") == "mice":
            values = {"query_max_length": "32", "doc_max_length": "128", **values}
        cfg = TrainConfig.from_dict({"model": {**values, "backbone": args.backbone}})
        torch.manual_seed(12)
        rows[spec] = measure(build_reranker(cfg.model, device="cpu"), groups)
        print(spec, {k: round(v, 4) for k, v in rows[spec].items()}, flush=True)
    import pandas as pd

    table = pd.DataFrame(rows).T.fillna(float("nan")).map(lambda v: "" if v != v else f"{v:.3g}")
    print("\n" + to_markdown(table))
    return table


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
