"""Command line: ``pyterrier-mice train CONFIG.yaml [--set key=value ...]``."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pyterrier-mice", description="pyterrier-mice command line")
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a model from a YAML config")
    tr.add_argument("config", help="YAML file (see pyterrier_mice/configs/)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set steps=100 --set model.backbone=/path")
    args = ap.parse_args(argv)
    if args.command == "train":
        from .training import TrainConfig, run
        cfg = TrainConfig.from_yaml(args.config, args.overrides)
        result = run(cfg)
        print(json.dumps({"step": result["step"], "best": result["best"], "output_dir": cfg.output_dir}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
