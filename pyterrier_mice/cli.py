"""Command line: ``pyterrier-mice train CONFIG.yaml [--set key=value ...]``,
``pyterrier-mice index verify PATH``.

Errors a user can fix (a bad config value, a run under another config, a missing file) print
one line; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pyterrier-mice", description="pyterrier-mice command line")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a model from a YAML config")
    tr.add_argument("config", help="YAML file (see pyterrier_mice/configs/)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set steps=100 --set model.backbone=/path")
    again = tr.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="start again, discarding a previous run in output_dir")
    again.add_argument("--resume-anyway", action="store_true",
                       help="continue a previous run in output_dir under a changed config")
    tr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    ix = sub.add_parser("index", help="document-state index tools")
    ix_sub = ix.add_subparsers(dest="action", required=True)
    ver = ix_sub.add_parser("verify", help="check every file of an index against its checksums")
    ver.add_argument("path")
    args = ap.parse_args(argv)
    try:
        if args.command == "train":
            from .training import TrainConfig, run
            cfg = TrainConfig.from_yaml(args.config, args.overrides)
            result = run(cfg, overwrite=args.overwrite, resume_anyway=args.resume_anyway)
            print(json.dumps({"step": result["step"], "best": result["best"], "output_dir": cfg.output_dir}))
        elif args.command == "index" and args.action == "verify":
            from .index import DocStateIndex
            idx = DocStateIndex(args.path).verify()
            print(f"{args.path}: OK ({len(idx)} documents, {idx.manifest['num_tokens']} tokens, every checksum "
                  "matches)")
    except (ValueError, FileNotFoundError, KeyError) as e:
        if args.debug:
            raise
        print(f"pyterrier-mice {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
