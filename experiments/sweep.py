"""Layer sweeps for the paper's Figures 3 and 4: nDCG@10 against the first interaction layer ℓ*
and against the number of dropped top layers, written as a CSV that ``figures.py sweep`` plots.

    # MICE-ℓX+2 built from a trained cross-encoder without fine-tuning (its head is kept)
    python experiments/sweep.py first-layer --from runs/cranfield_ce/best --values 1 2 3 4 \\
        --interaction-layers 2 --dataset cranfield --k 20 --csv results/fig3.csv
    # MICE-ℓ3+k for k = L-3-d, d dropped layers
    python experiments/sweep.py dropped-layers --from runs/cranfield_ce/best --first-layer 3 \\
        --values 0 1 2 --dataset cranfield --k 20 --csv results/fig4.csv
    # Mask 3-ℓ (query reads the document from layer ℓ on) on the same cross-encoder
    python experiments/sweep.py mask3 --from runs/cranfield_ce/best --values 0 2 4 6 ...
    # the paper's protocol: train every variant with the training CLI's config, evaluate its best/
    python experiments/sweep.py first-layer --train pyterrier_mice/configs/cranfield_mice.yaml \\
        --set model.backbone=PATH --values 1 2 3 4 5 --dataset cranfield --k 20 --csv ...

Each row of the CSV: ``sweep, family, model, x, first_interaction_layer, interaction_layers,
dropped_layers, dataset, <measure>``; BM25 and the source cross-encoder are added as reference
rows (empty ``x``), drawn as horizontal lines. Runs and trained variants are reused on reruns.
"""

import argparse
import csv
import hashlib
import json
import os
import warnings

from transformers import AutoConfig

from pyterrier_mice import CrossEncoderReranker, MiceModel, MiceReranker
from pyterrier_mice.evaluation import per_query
from pyterrier_mice.evaluation.experiment import open_datasets, paper_order, rerank_experiment, system_identity
from pyterrier_mice.models.checkpoints import num_backbone_layers
from pyterrier_mice.models.checkpoints import load_tokenizer

SWEEPS = ("first-layer", "dropped-layers", "mask3")


def variants(args, total: int) -> list[dict]:
    """One dict per swept value: its label, x and the MICE/mask parameters."""
    out = []
    for v in args.values:
        if args.sweep == "first-layer":
            ls, k = v, (args.interaction_layers if args.interaction_layers is not None else total - v)
        elif args.sweep == "dropped-layers":
            ls, k = args.first_layer, total - args.first_layer - v
        else:
            ls, k = v, total - v
        if not (0 <= ls and k >= 1 and ls + k <= total) and args.sweep != "mask3":
            raise SystemExit(f"value {v}: MICE-ℓ{ls}+{k} does not fit a {total}-layer backbone")
        if args.sweep == "mask3" and not 0 <= v <= total:
            raise SystemExit(f"value {v}: mask3-{v} needs 0 ≤ ℓ ≤ {total}")
        label = f"Mask 3-ℓ{v}" if args.sweep == "mask3" else f"MICE-ℓ{ls}+{k}"
        out.append(
            {
                "label": label,
                "x": v,
                "first_interaction_layer": ls,
                "interaction_layers": k,
                "dropped_layers": total - ls - k,
            }
        )
    return out


def train_variant(args, var: dict) -> str:
    """Train one variant with the training CLI's config; its best/ (else final/) checkpoint. The
    output folder is keyed by a hash of the whole config, so a finished run is reused only for
    the same config (and an interrupted one resumes)."""
    from pyterrier_mice.training import TrainConfig, run

    sets = list(args.set or [])
    if args.source:
        sets.append(f"model.backbone={args.source}")
    if args.sweep == "mask3":
        sets += ["model.type=cross-encoder", f"model.policy=mask3-{var['x']}"]
    else:
        sets += [
            "model.type=mice",
            f"model.first_interaction_layer={var['first_interaction_layer']}",
            f"model.interaction_layers={var['interaction_layers']}",
        ]
    cfg = TrainConfig.from_yaml(args.train, sets)
    cfg.output_dir = "-"  # the folder is named after everything else in the config
    digest = hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:10]
    cfg.output_dir = out = os.path.join(args.work, "sweep-models", f"{args.sweep}-{var['x']}-{digest}")
    if not os.path.exists(os.path.join(out, "final", "config.json")):
        run(cfg)
    best = os.path.join(out, "best")
    return best if os.path.exists(os.path.join(best, "config.json")) else os.path.join(out, "final")


def build_systems(args, total: int) -> dict:
    common = dict(batch_size=args.batch_size, device=args.device)
    systems = {}
    if args.source and not args.train:
        ce = CrossEncoderReranker.from_pretrained(args.source, **common)
        systems["cross-encoder"] = (ce, system_identity(ce, args.source))
    for var in variants(args, total):
        if args.train:
            path = train_variant(args, var)
            kind = AutoConfig.from_pretrained(path).model_type
            rr = (MiceReranker if kind == "mice" else CrossEncoderReranker).from_pretrained(path, **common)
            systems[var["label"]] = (rr, system_identity(rr, path), var)
        elif args.sweep == "mask3":
            rr = CrossEncoderReranker.from_pretrained(args.source, f"mask3-{var['x']}", **common)
            systems[var["label"]] = (rr, system_identity(rr, args.source), var)
        else:
            model = MiceModel.from_backbone(args.source, var["first_interaction_layer"], var["interaction_layers"])
            rr = MiceReranker(model, load_tokenizer(args.source), **common)
            what = system_identity(rr, args.source, "mice", var["first_interaction_layer"], var["interaction_layers"])
            systems[var["label"]] = (rr, what, var)
    return systems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", choices=SWEEPS)
    ap.add_argument("--values", type=int, nargs="+", required=True)
    ap.add_argument("--from", dest="source", help="cross-encoder checkpoint (no fine-tuning unless --train)")
    ap.add_argument("--train", help="training config: train each variant (see pyterrier-mice train)")
    ap.add_argument("--set", action="append", help="training config override key=value (with --train)")
    ap.add_argument("--interaction-layers", type=int, default=None, help="first-layer sweep: k (default: all)")
    ap.add_argument("--first-layer", type=int, default=4, help="dropped-layers sweep: ℓ*")
    ap.add_argument("--dataset", action="append", help="repeatable (default: the bundled cranfield)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--measure", default="nDCG@10")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--work", default="runs/experiments")
    args = ap.parse_args(argv)
    args.dataset = args.dataset or ["cranfield"]
    if not args.source and not args.train:
        ap.error("give --from CHECKPOINT, --train CONFIG, or both")
    warnings.filterwarnings("ignore", message=".*truncated.*")

    if args.source:
        kind = AutoConfig.from_pretrained(args.source).model_type
        if kind in ("mice", "mice_colbert"):
            ap.error(f"--from {args.source!r} is a {kind} model; variants are built from a cross-encoder checkpoint")
        total = num_backbone_layers(args.source)
    else:
        from pyterrier_mice.training import TrainConfig

        total = num_backbone_layers(TrainConfig.from_yaml(args.train, args.set or []).model.backbone)
    systems = build_systems(args, total)
    family = ("Mask 3-ℓ" if args.sweep == "mask3" else "MICE") + (" (trained)" if args.train else " (no fine-tuning)")
    rows = []
    datasets = {ds.label: ds for ds in open_datasets(args.dataset, args.split)}
    for ds in (datasets[label] for label in paper_order(list(datasets))):
        res = rerank_experiment(ds, {n: s[:2] for n, s in systems.items()}, k=args.k, work=args.work)
        means = per_query(res, args.measure).mean()
        for name, value in means.items():
            var = systems[name][2] if name in systems and len(systems[name]) > 2 else {}
            rows.append(
                {
                    "sweep": args.sweep,
                    "family": family if var else name,
                    "model": name,
                    "x": var.get("x", ""),
                    "first_interaction_layer": var.get("first_interaction_layer", ""),
                    "interaction_layers": var.get("interaction_layers", ""),
                    "dropped_layers": var.get("dropped_layers", ""),
                    "dataset": ds.label,
                    args.measure: round(float(value), 4),
                }
            )
    os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"{r['dataset']:>12}  {r['model']:<16} {r[args.measure]:.4f}")
    print(args.csv)
    return rows


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
