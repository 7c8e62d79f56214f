"""The command line: ``pyterrier-mice train``, ``derive``, ``rerank``, ``prefetch`` and ``index build``/``verify``;
every error prints one line (``--debug`` shows the traceback); models are loaded before any BM25 work; the
package's modules are imported only by the command that needs them (``--help`` is quick)."""

from __future__ import annotations

import argparse
import json
import sys

from .progress import close_all
from .training.derive import DEFAULT_FORM as DEFAULT_FORM_NAME, FORMS_HELP


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command. Its option names are no prefix of an option of ``torchrun`` or
    ``accelerate launch``, which would read them as their own (ambiguous) options."""
    from . import __version__

    ap = argparse.ArgumentParser(prog="pyterrier-mice", description="pyterrier-mice command line")
    ap.add_argument("--version", action="version", version=f"pyterrier-mice {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a model from a YAML config")
    tr.add_argument("config", help="YAML file (see pyterrier_mice/configs/)")
    tr.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set steps=100 --set model.backbone=/path",
    )
    again = tr.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="start again, discarding a previous run in output_dir")
    again.add_argument(
        "--resume-anyway", action="store_true", help="continue a previous run in output_dir under a changed config"
    )
    tr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    dv = sub.add_parser("derive", help="derive MICE from a cross-encoder: initialise from it, distil from it")
    dv.add_argument(
        "source",
        help="the cross-encoder: a checkpoint folder of this package, a HF "
        "BertForSequenceClassification folder, or a hub id",
    )
    dv.add_argument(
        "--data",
        required=True,
        help="a BEIR-layout folder (teacher scores from SOURCE, cached), or "
        "the MS MARCO teacher-score TSV (bert_cat_ensemble_...tsv)",
    )
    dv.add_argument(
        "--config",
        help="the recipe (default: configs/cranfield_mice_derived.yaml for a folder, "
        "configs/paper_mice_l4_3_derived.yaml for the MS MARCO TSV)",
    )
    dv.add_argument("--out", help="output_dir (default: runs/<source name>-mice)")
    dv.add_argument(
        "--form",
        choices=sorted(FORMS_HELP),
        default=None,
        help="which MICE: "
        + "; ".join(f"{k}: {v}" for k, v in sorted(FORMS_HELP.items()))
        + " (default: %s)" % DEFAULT_FORM_NAME,
    )
    dv.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set steps=100 --set model.first_interaction_layer=3 "
        "(after --form, so it wins)",
    )
    again = dv.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="start again, discarding a previous run in --out")
    again.add_argument(
        "--resume-anyway", action="store_true", help="continue a previous run in --out under a changed recipe"
    )
    dv.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    rk = sub.add_parser(
        "rerank",
        help="re-rank a run (or BM25's top-k) into a TREC run, its queries sharded over "
        "the processes of torchrun / accelerate launch",
    )
    rk.add_argument("model", help="a checkpoint (any re-ranker of this package, or a HF cross-encoder)")
    rk.add_argument(
        "--dataset",
        default="cranfield",
        help="the queries and documents: a BEIR folder, a bundled collection or irds:<id> (default: cranfield)",
    )
    rk.add_argument("--split", default="test", help="qrels split of a BEIR folder (its queries)")
    rk.add_argument("--candidates", help="a TREC run file to re-rank (default: BM25's top --k)")
    rk.add_argument("--k", type=int, default=100, help="candidates per query (BM25's top k, or the run cut at k)")
    rk.add_argument("--out", required=True, help="the merged TREC run to write (shards go to OUT.shards/)")
    rk.add_argument("--shard-queries", type=int, default=50, help="queries per shard (the unit a rerun skips)")
    rk.add_argument("--batch-size", type=int, default=64)
    rk.add_argument("--index", help="a document-state index to read (MICE, ColBERT, PreTTR)")
    rk.add_argument("--device", help="default: cuda:LOCAL_RANK when CUDA is there, else cpu")
    rk.add_argument("--overwrite", action="store_true", help="discard shards of another run in OUT.shards/")
    rk.add_argument(
        "--wait-hours",
        type=float,
        default=24.0,
        help="how long a rank that is done waits for the slowest rank (default 24)",
    )
    pf = sub.add_parser(
        "prefetch",
        help="fetch hub models and ir_datasets collections into their caches (and build "
        "the BM25 indexes) while online, to run the tutorials offline afterwards",
    )
    pf.add_argument(
        "--model",
        action="append",
        metavar="HUB_ID",
        help="a hub model to fetch (repeatable; default: what MICE_TUTORIAL=full reads: %s)"
        % ", ".join(_classroom_defaults()[0]),
    )
    pf.add_argument(
        "--dataset",
        action="append",
        metavar="irds:ID",
        help="an ir_datasets collection to fetch (repeatable; default: %s; e.g. also "
        "irds:msmarco-passage/trec-dl-2019/judged, ~3 GB)" % ", ".join(_classroom_defaults()[1]),
    )
    pf.add_argument("--no-index", action="store_true", help="do not build the BM25 indexes")
    ix = sub.add_parser("index", help="document-state index tools")
    ix_sub = ix.add_subparsers(dest="action", required=True)
    ver = ix_sub.add_parser("verify", help="check every file of an index against its checksums")
    ver.add_argument("path", help="the index directory (a sharded index is checked shard by shard)")
    bld = ix_sub.add_parser("build", help="precompute document states (sharded under torchrun / accelerate launch)")
    bld.add_argument("model", help="a MICE, ColBERT or PreTTR checkpoint")
    bld.add_argument("--corpus", required=True, help="a BEIR-layout folder or irds:<ir_datasets id>")
    bld.add_argument("--out", required=True, help="the index directory")
    bld.add_argument("--kv", action="store_true", help="MICE: also store each interaction layer's keys/values")
    bld.add_argument(
        "--storage",
        default="fp16",
        help="storage kind: fp32, fp16, int8, int4, pq (2 bits per value, learned; needs "
        "faiss-cpu to build) or pq1 (1 bit)",
    )
    bld.add_argument("--batch-size", type=int, default=64)
    bld.add_argument("--device", help="default: cuda:LOCAL_RANK when CUDA is there, else cpu")
    bld.add_argument(
        "--docnos-from",
        help="only the documents of this TREC run (e.g. the BM25 top-k of the queries you will re-rank)",
    )
    bld.add_argument("--overwrite", action="store_true")
    return ap


def _classroom_defaults() -> tuple[tuple, tuple]:
    from .classroom import DATASETS, MODELS

    return MODELS, DATASETS


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("train", "derive"):
            from .training import TrainConfig, run
            from .training.derive import derive_config

            if args.command == "derive":
                cfg = TrainConfig.from_yaml(*derive_config(args))
            else:
                cfg = TrainConfig.from_yaml(args.config, args.overrides)
            result = run(cfg, overwrite=args.overwrite, resume_anyway=args.resume_anyway)
            print(json.dumps({"step": result["step"], "best": result["best"], "output_dir": cfg.output_dir}))
        elif args.command == "rerank":
            rerank_run(args)
        elif args.command == "prefetch":
            from .classroom import DATASETS, MODELS, prefetch

            failed = prefetch(args.model or MODELS, args.dataset or DATASETS, index=not args.no_index)
            if failed:
                print(f"pyterrier-mice prefetch: error: {failed} item(s) not fetched (see above)", file=sys.stderr)
                return 2
        elif args.command == "index" and args.action == "build":
            build_index(args)
        elif args.command == "index" and args.action == "verify":
            from .index import MiceIndex

            idx = MiceIndex(args.path).verify()
            print(
                f"{args.path}: OK ({len(idx)} documents, {idx.manifest['num_tokens']} tokens, every checksum matches)"
            )
    except Exception as e:  # one line each (a KeyboardInterrupt still stops with its traceback)
        if args.debug:
            raise
        close_all()  # an open progress bar would print after the error line
        print(f"pyterrier-mice {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2
    return 0


#: the errors whose message is written for the user (bad input, a missing file, no network)
_EXPECTED = (ValueError, OSError, KeyError, ImportError)


def error_line(e: BaseException) -> str:
    """``e`` as one line: its message (a ``KeyError``'s unquoted); an error the package did not
    foresee also names its type and ``--debug``."""
    message = e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
    message = " ".join(message.split()) or type(e).__name__
    if type(e).__module__.startswith("pyterrier_mice") or isinstance(e, _EXPECTED):
        return message
    return f"{type(e).__name__}: {message} (run with --debug for the traceback)"


def run_script(main, argv=None) -> None:
    """Run an ``experiments/`` or ``benchmarks/`` script's ``main()`` as the CLI runs a command:
    an error is one line on stderr and exit status 2; ``--debug`` (removed from the arguments
    ``main`` parses) shows the traceback."""
    import os

    argv = sys.argv if argv is None else argv
    debug = "--debug" in argv[1:]
    sys.argv = [a for a in argv if a != "--debug"]
    try:
        main()
    except Exception as e:
        if debug:
            raise
        close_all()  # an open progress bar would print after the error line
        print(f"{os.path.basename(argv[0])}: error: {error_line(e)}", file=sys.stderr)
        sys.exit(2)


def rerank_run(args) -> None:
    """``rerank``: this process's shards of the candidates, and the merged run once every shard is done."""
    import os

    import pyterrier as pt
    import torch

    from .evaluation.distributed import launcher_rank, rerank_sharded
    from .evaluation.experiment import checkpoint_fingerprint, open_dataset
    from .evaluation.retrieval import bm25, top_of_run
    from .evaluation.splits import check_model_not_validated_on
    from .rerankers.loading import load_reranker

    rank, world, local = launcher_rank()
    device = args.device or (f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    kwargs = {"batch_size": args.batch_size, "device": device, "verbose": True}  # a bar per shard
    if args.index:
        kwargs["index"] = args.index
    reranker = load_reranker(args.model, **kwargs)  # a mistyped model fails here, before any BM25 work
    ds = open_dataset(args.dataset, args.split)
    if os.path.isdir(args.model):  # never re-ranks the queries its checkpoint was chosen on
        check_model_not_validated_on(args.model, ds.topics)
    if args.candidates:
        run = top_of_run(pt.io.read_results(args.candidates), args.k)
        candidates = ds.topics.merge(run[["qid", "docno"]], on="qid")
        if candidates.empty:
            raise ValueError(
                f"--candidates {args.candidates}: none of its queries is among {args.dataset}'s {args.split} queries"
            )
    else:
        candidates = bm25(ds.collection, num_results=args.k)(ds.topics)
    candidates = pt.text.get_text(ds.collection, "text")(candidates[["qid", "query", "docno"]])
    identity = {
        "model": checkpoint_fingerprint(args.model),
        "reranker": type(reranker).__name__,
        "index": args.index and os.path.abspath(args.index),
    }  # the candidates: digested by rerank_sharded
    done = rerank_sharded(
        reranker,
        candidates,
        args.out,
        identity,
        shard_queries=args.shard_queries,
        overwrite=args.overwrite,
        verbose=True,
        wait_s=args.wait_hours * 3600,
    )
    print(
        f"rank {rank} of {world}: {len(done['done'])} shard(s) re-ranked, {len(done['skipped'])} already done"
        + (f"; {args.out} written ({done['shards']} shards)" if done["merged"] else ""),
        flush=True,
    )


def build_index(args) -> None:
    """``index build``: this process's share of the corpus (all of it, or its shard under a launcher)."""
    import os

    import torch

    from .evaluation.datasets import BeirFolder, IrdsCollection
    from .index import MiceIndex
    from .index.build import launcher_shard
    from .rerankers.loading import load_reranker

    device = args.device or (f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
    rr = load_reranker(args.model, batch_size=args.batch_size, device=device)
    corpus = IrdsCollection(args.corpus) if args.corpus.startswith("irds:") else BeirFolder(args.corpus)
    docs = corpus.get_corpus_iter()
    if args.docnos_from:
        import pyterrier as pt

        wanted = set(pt.io.read_results(args.docnos_from)["docno"].astype(str))
        docs = (d for d in docs if d["docno"] in wanted)
    shard = launcher_shard()
    idx = (
        MiceIndex(args.out)
        .indexer(rr, kv=args.kv, storage=args.storage, overwrite=args.overwrite, shard=shard)
        .index(docs)
    )
    where = f"shard {shard[0]} of {shard[1]} of " if shard else ""
    print(f"indexed {where}{args.out}" + ("" if shard else f": {len(idx)} documents"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
