"""BM25 (PISA) top-k → re-rank, on one or more datasets, in the paper's table layout.

    python experiments/rerank.py --dataset irds:beir/scifact/test \\
        --model cross-encoder/ms-marco-MiniLM-L6-v2 --policy full mask1 mask2
    python experiments/rerank.py --dataset cranfield --split test --k 20 \\
        --model CE=runs/cranfield_ce/best --model MICE=runs/cranfield_mice/best

``--dataset`` (repeatable): a local BEIR-layout folder or ``irds:<ir_datasets id>`` (document
text built per dataset as the reference implementation does, e.g. TREC-COVID "abstract title");
``--paper-datasets`` runs the paper's 3 in-domain sets and 13 BEIR sets. ``--model``
(repeatable, ``[NAME=]PATH``): a checkpoint of this package (its kind is read from its config)
or any HF cross-encoder, run under each ``--policy``, or a sentence-transformers bi-encoder (its cosine)
(the paper's Table 2: masks applied to an
off-the-shelf cross-encoder without fine-tuning); ``NAME=PATH,PATH,…`` are repetitions (seeds)
whose per-query values are averaged before testing, as in the paper. ``--fusion`` adds, for each
model trained here, ``NAME + BM25``: its scores fused with BM25's at the weight its training chose
on its validation queries (``fusion.json``; computed from the two runs, not re-ranked again).

Prints nDCG@10 per dataset and system (paper's columns: MSM, DL19, …, T-C) with ↑/↓ where a
system differs significantly from ``--baseline`` (paired t-test, Holm-corrected; ``--test
welch --correction none`` for the reference's test), then the ID, OOD and BM25-hard averages
(see pyterrier_mice.evaluation.experiment.BM25_HARD; more with ``--group NAME=DS,DS``), as Markdown and
``--latex``. Each system's run is saved under ``--work`` with a fingerprint of its checkpoint,
``k`` and the topics, and reused on reruns.
"""

import argparse
import os
import warnings

from transformers import AutoConfig

from pyterrier_mice import BiEncoderReranker, CrossEncoderReranker, PreTTRModel
from pyterrier_mice.evaluation import paper_table, pool_repetitions, to_latex, to_markdown
from pyterrier_mice.evaluation.experiment import (
    IN_DOMAIN,
    PAPER_DATASETS,
    is_paper_dataset,
    open_datasets,
    paper_order,
    rerank_experiment,
    saved_fusions,
    system_identity,
    table_groups,
)
from pyterrier_mice.rerankers.loading import load_reranker, reranker_class_of


def parse_model(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` or ``PATH`` (a path may itself contain "=" only after a name)."""
    name, sep, path = spec.partition("=")
    return (name, path) if sep and not os.path.exists(spec) else (None, spec)


def short_name(path: str) -> str:
    """The last two parts of a checkpoint path (e.g. ``cranfield_mice-best``)."""
    return "-".join(os.path.normpath(path).split(os.sep)[-2:])


def systems_for(args) -> tuple[dict, dict]:
    """name → (re-ranker, what identifies it) for every ``--model`` × ``--policy``, and name → its
    checkpoint; the repetitions of ``NAME=PATH,PATH`` are named ``NAME#1``, ``NAME#2``, …"""
    common = dict(batch_size=args.batch_size, device=args.device, precision=args.precision)
    checkpoints = {}
    lengths = {
        k: getattr(args, k)
        for k in ("max_length", "query_max_length", "doc_max_length")
        if getattr(args, k) is not None
    }
    systems = {}
    for spec in args.model:
        label, paths = parse_model(spec)
        paths = paths.split(",") if label else [paths]
        for rep, path in enumerate(paths, 1):
            kind = AutoConfig.from_pretrained(path).model_type
            suffix = f"#{rep}" if len(paths) > 1 else ""
            cls = reranker_class_of(path)
            own = {k: v for k, v in lengths.items() if k in cls.length_options}
            if cls is not CrossEncoderReranker or kind == PreTTRModel.config_class.model_type:
                rr = load_reranker(path, **common, **own)
                what = "bi-encoder" if cls is BiEncoderReranker else kind.replace("mice_", "").upper()
                name = label or f"{what} {short_name(path)}"
                systems[name + suffix] = (rr, system_identity(rr, path))
                checkpoints[name + suffix] = path
                continue
            for policy in args.policy:
                rr = load_reranker(path, policy=policy, **common, **own)
                name = label or f"CE {short_name(path)}"
                if len(args.policy) > 1 or policy is not None:
                    name += f" {rr.policy.name}"
                systems[name + suffix] = (rr, system_identity(rr, path))
                checkpoints[name + suffix] = path
    return systems, checkpoints


def latex_spans(datasets: list[str], table) -> list[tuple[str, int]]:
    """The paper's header row: in-domain datasets, out-of-domain (BEIR) datasets, others, averages."""
    n_id = sum(d in IN_DOMAIN for d in datasets)
    n_other = sum(not is_paper_dataset(d) for d in datasets)
    spans = [
        ("In-domain", n_id),
        ("Out-of-domain", len(datasets) - n_id - n_other),
        ("Other", n_other),
        ("Average", len(table.columns) - len(datasets)),
    ]
    return [(label, n) for label, n in spans if n]


def parse_groups(specs) -> dict[str, list[str]]:
    groups = {}
    for spec in specs or []:
        name, sep, members = spec.partition("=")
        if not sep or not members:
            raise SystemExit(f"--group {spec!r}: expected NAME=DATASET,DATASET")
        groups[name] = members.split(",")
    return groups


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", default=[])
    ap.add_argument("--paper-datasets", action="store_true", help="the paper's 16 test sets (ir_datasets)")
    ap.add_argument("--split", default="test", help="qrels split of local BEIR folders")
    ap.add_argument("--model", action="append", default=[], help="[NAME=]checkpoint (repeatable; none: BM25 alone)")
    ap.add_argument("--policy", nargs="*", default=[None], help="attention policies for plain cross-encoders")
    ap.add_argument(
        "--fusion",
        action="store_true",
        help="also each model's scores fused with BM25's, with the weight its training chose on "
        "validation queries (NAME + BM25; see ScoreFusion)",
    )
    ap.add_argument("--k", type=int, default=1000, help="BM25 depth to re-rank (the paper's: 1000)")
    ap.add_argument("--baseline", default="BM25", help="system the ↑/↓ tests compare with")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--precision", default=None, help="what the models compute in (fp16, bf16 on CUDA; default fp32)")
    ap.add_argument("--max-length", type=int, help="cross-encoder pair length (default: as trained, else the model's)")
    ap.add_argument("--query-max-length", type=int, help="MICE query length (default: as trained)")
    ap.add_argument("--doc-max-length", type=int, help="MICE document length (default: as trained)")
    ap.add_argument("--test", default="t", choices=["t", "welch", "wilcoxon"])
    ap.add_argument("--correction", default="holm", help="a statsmodels multipletests method, or 'none'")
    ap.add_argument("--measure", default="nDCG@10")
    ap.add_argument("--group", action="append", help="another average: NAME=DS,DS (paper columns or names)")
    ap.add_argument("--latex", action="store_true")
    ap.add_argument("--work", default="runs/experiments", help="BM25 indexes and saved runs")
    args = ap.parse_args(argv)
    specs = args.dataset + ([f"irds:{i}" for i, _, _ in PAPER_DATASETS] if args.paper_datasets else [])
    specs = specs or ["cranfield"]  # the bundled collection
    warnings.filterwarnings("ignore", message=".*truncated.*")

    systems, paths = systems_for(args)
    fusions = saved_fusions(paths) if args.fusion else {}
    names = ["BM25", *dict.fromkeys(n.split("#")[0] for n in [*systems, *fusions])]
    if args.baseline not in names:
        ap.error(f"--baseline {args.baseline!r} is not a system; systems: {names}")
    results = {}
    for ds in open_datasets(specs, args.split):  # distinct labels: never two datasets in one column
        results[ds.label] = pool_repetitions(rerank_experiment(ds, systems, k=args.k, work=args.work, fusions=fusions))
    results = {label: results[label] for label in paper_order(list(results))}
    correction = None if args.correction == "none" else args.correction
    groups = table_groups(list(results), parse_groups(args.group))
    table = paper_table(results, args.measure, args.baseline, groups, args.test, correction)
    print(
        f"\n{args.measure} (×100); every system ranks the same BM25 top-{args.k} per query (BM25 itself is cut "
        f"at {args.k}); ↑/↓: significantly better/worse than {args.baseline} ({args.test}-test, "
        f"correction={correction}, α=0.05)"
    )
    others = [d for d in results if not is_paper_dataset(d)]
    if others:
        print(f"{', '.join(others)}: not among the paper's datasets, so in none of its averages")
    print()
    print(to_markdown(table))
    if args.latex:
        print("\n" + to_latex(table, latex_spans(list(results), table)))
    return table


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
