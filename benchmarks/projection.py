"""MS MARCO at scale, on paper, from measured numbers: the size of a document-state index of MS MARCO
passage (8,841,823 passages) and of only the TREC-DL 2019 top-1000 candidates, for every storage
kind, with and without K/V, and how long building it takes per CPU core (and per GPU on a GPU).

    python benchmarks/projection.py [--sample irds:msmarco-passage] [--device cuda] [--out table.md]

Measured here: tokens per passage (the document encoder's own tokenisation, ``[CLS]`` and
``[SEP]`` included) over ``--sample`` (default: the MS MARCO passages quoted in ir_datasets' own
test suite, the only ones available offline; with a download, ``irds:msmarco-passage`` reads its
first ``--sample-size``); bytes per token of each kind on disk (an index of sample passages
built in each kind, for MICE-ℓ4+3 on the MiniLM-L12-H384 shape); documents per second of an
fp16 build on ``--device`` (one thread on the CPU: per core). Projected: size = tokens per passage
× passages × bytes per token (+ the codebooks of ``pq``/``pq1``, + 16 bytes of offsets and text
hash and the docno per passage); time = passages / documents per second.
"""

import argparse
import ast
import os
import re
import shutil
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import minilm_l12_encoder, report, time_it, tokenizer  # noqa: E402

MSMARCO_PASSAGES = 8_841_823
DL19_CANDIDATES = 43 * 1000  # judged queries × top-1000 (an upper bound: candidates repeat across queries)
KINDS = ["fp32", "fp16", "int8", "int4", "pq", "pq1"]


def sample_passages(spec: str | None, size: int) -> tuple[list[str], str]:
    """Passages to measure, and where they came from."""
    if spec is None:
        import ir_datasets

        path = os.path.join(
            os.path.dirname(os.path.dirname(ir_datasets.__file__)), "test", "integration", "msmarco_passage.py"
        )
        if not os.path.exists(path):
            raise SystemExit(
                "no sample: ir_datasets' test suite is not installed here; pass --sample "
                "irds:msmarco-passage (downloads MS MARCO) or a BEIR folder"
            )
        found = dict(
            re.findall(
                r"GenericDoc\(doc_id='(\d+)', text=(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\)",
                open(path, encoding="utf8").read(),
            )
        )
        texts = [ast.literal_eval(t) for _, t in sorted(found.items(), key=lambda kv: int(kv[0]))]
        return texts, f"the {len(texts)} MS MARCO passages quoted in ir_datasets' test suite"
    from pyterrier_mice.evaluation.experiment import open_dataset

    coll = open_dataset(spec).collection
    texts = []
    for d in coll.get_corpus_iter():
        texts.append(d["text"])
        if len(texts) == size:
            break
    return texts, f"the first {len(texts)} documents of {spec}"


def build_model(tok):
    from pyterrier_mice import MiceModel, MiceReranker

    model = MiceModel.from_encoder(minilm_l12_encoder(), tok, 4, 3)
    return lambda **kw: MiceReranker(model, tok, doc_max_length=512, **kw)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", help="passages to measure: a BEIR folder or irds:<id> (default: see above)")
    ap.add_argument("--sample-size", type=int, default=10_000)
    ap.add_argument("--speed-docs", type=int, default=256, help="passages encoded to time a build")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    texts, source = sample_passages(args.sample, args.sample_size)
    tok = tokenizer()
    make = build_model(tok)
    rr = make(batch_size=64)
    tokens = np.array([len(s) for s in rr.doc_sequences(texts)])
    per_passage = float(tokens.mean())
    work = tempfile.mkdtemp(prefix="mice-projection-")
    from pyterrier_mice import MiceIndex

    corpus = [{"docno": str(i), "text": t} for i, t in enumerate(texts)]
    # bytes per token of each kind, on disk; pq's codebooks counted apart (a constant per index)
    measured = {}
    for kv in (False, True):
        for kind in KINDS:
            path = os.path.join(work, f"{kind}-{kv}")
            idx = MiceIndex(path).indexer(rr, kv=kv, storage=kind).index(corpus)
            books = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".codebook"))
            total = idx.manifest["num_tokens"]
            measured[(kind, kv)] = ((idx.bytes_per_token() * total - books) / total, books)
    # build speed: fp16 states (and K/V) on the device, one thread on a CPU
    if args.device == "cpu":
        torch.set_num_threads(1)
    speed_corpus = [corpus[i % len(corpus)] | {"docno": str(i)} for i in range(args.speed_docs)]
    fast = make(batch_size=64, device=args.device)
    speeds = {}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    for kv in (False, True):
        path = os.path.join(work, f"speed-{kv}")
        MiceIndex(path).indexer(fast, kv=kv, storage="fp16").index(speed_corpus[:64])  # warm-up
        seconds, _ = time_it(
            lambda: MiceIndex(path).indexer(fast, kv=kv, storage="fp16", overwrite=True).index(speed_corpus),
            warmup=0,
            runs=1,
            synchronize=sync,
        )
        speeds[kv] = args.speed_docs / seconds
    shutil.rmtree(work, ignore_errors=True)
    unit = "GPU" if args.device.startswith("cuda") else "CPU core"
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU, 1 thread"
    lines = [
        f"MICE-ℓ4+3, MiniLM-L12-H384 shape (hidden 384; K/V: 3 layers × keys and values). Tokens per passage: "
        f"{per_passage:.1f} (mean over {source}; median {np.median(tokens):.0f}). MS MARCO passage: "
        f"{MSMARCO_PASSAGES:,} passages, {per_passage * MSMARCO_PASSAGES / 1e9:.2f} G tokens; TREC-DL 2019 "
        f"top-1000: at most {DL19_CANDIDATES:,} passages (43 judged queries).",
        "",
        "| storage | bytes / token | MS MARCO passage (GB) | DL-19 top-1000 only (GB) |",
        "|---|---|---|---|",
    ]
    overhead = 16 + 8  # offsets + text hash, and a docno of about 8 bytes per passage
    for kv in (False, True):
        for kind in KINDS:
            bpt, books = measured[(kind, kv)]
            size = lambda n: (n * per_passage * bpt + n * overhead + books) / 1e9  # noqa: E731
            lines.append(
                f"| {kind}{' + K/V' if kv else ''} | {bpt:.0f} | {size(MSMARCO_PASSAGES):.1f} | "
                f"{size(DL19_CANDIDATES):.2f} |"
            )
    lines += [
        "",
        f"Build (fp16, {where}; {args.speed_docs} passages of the sample, timed after a warm-up):",
        "",
        f"| index | passages / s per {unit} | MS MARCO passage, {unit}-hours | DL-19 top-1000, {unit}-minutes |",
        "|---|---|---|---|",
    ]
    for kv in (False, True):
        s = speeds[kv]
        lines.append(
            f"| states{' + K/V' if kv else ''} | {s:.1f} | {MSMARCO_PASSAGES / s / 3600:.0f} | "
            f"{DL19_CANDIDATES / s / 60:.1f} |"
        )
    report(lines, args.out)


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
