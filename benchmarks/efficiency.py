"""The efficiency table (the paper's Table 5): re-ranking 1 query × N docs × 512 tokens, on CUDA
(with --dtype fp16/bf16 if asked) when a GPU is present, else on CPU.

    python benchmarks/efficiency.py [--docs 128] [--runs 3] [--threads 2] [--dtype fp16] [--out table.md]

Besides latency, docs/s, peak memory and the FLOPs each system executes per document (and so the
speed-up its arithmetic allows), it prints where each system's time goes (a profile of
one extra run: frame work, tokenisation, index lookup, reading stored states, encoding, the
interaction) and checks the performance goals (index + K/V ≥ 100× the cross-encoder, states-only
index ≥ 40×, every MICE path's peak memory ≤ the cross-encoder's).

Systems: the cross-encoder; MICE-ℓ4+3 on the fly, from a precomputed index (fp16 states) and
from an index with cached per-layer K/V, in the paper's form and in the authors' newer one
(cross-attention first, ``[CLS]`` reading the document; also with their exact-match heads, whose
index stores the document token ids and, with K/V, each layer's exact-match values); ColBERT (128d,
documents of 512 tokens as in the paper's table) on the fly and from an index; all with the
MiniLM-L12-H384 shape. Then the models ``pyterrier-mice derive`` makes (its default form):
MICE-ℓ4+8 of the 12-layer cross-encoder, and MICE-ℓ2+4 of a 6-layer one beside that cross-encoder.
Each system runs in its own process so that its peak memory (VmHWM: peak resident memory,
which includes the weights and the Python runtime) is its own; "increase" is the peak minus
the resident memory after loading. CPU numbers: the paper's are on a GPU.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import frame, minilm_l12_encoder, peak_rss_mb, report, rss_mb, time_it, tokenizer

from pyterrier_mice.training.derive import DEFAULT_FORM, FORMS


def _options(form: dict) -> dict:
    """A ``derive`` form (``{"model.key": value}``) as MiceConfig options."""
    return {key.removeprefix("model."): value for key, value in form.items()}


#: MICE systems: name → (label, MiceConfig options, ℓ*, interaction layers, encoder layers, held to the goals)
MICE_FORMS = {
    "mice": ("MICE-ℓ4+3", {}, 4, 3, 12, True),
    "mice-newer": (
        "MICE-ℓ4+3 newer form",
        {"interaction": "cross_first", "cls_cross_attention": "attend"},
        4,
        3,
        12,
        True,
    ),
    "mice-newer-em": (
        "MICE-ℓ4+3 newer + exact match",
        {"interaction": "cross_first", "cls_cross_attention": "attend", "exact_match_heads": True},
        4,
        3,
        12,
        True,
    ),
    # what `pyterrier-mice derive` makes (its default form): ℓ* a third of the layers, every layer above kept
    "derived-l12": (
        f"derive's MICE-ℓ4+8 of 12 layers ({DEFAULT_FORM} form)",
        _options(FORMS[DEFAULT_FORM]),
        4,
        8,
        12,
        False,
    ),
    "derived-l6": (
        f"derive's MICE-ℓ2+4 of 6 layers ({DEFAULT_FORM} form)",
        _options(FORMS[DEFAULT_FORM]),
        2,
        4,
        6,
        False,
    ),
}
CROSS_ENCODERS = {"cross-encoder": 12, "cross-encoder-l6": 6}
SYSTEMS = [
    "cross-encoder",
    *(f"{m}{w}" for m in MICE_FORMS for w in ("", "-index", "-index-kv") if MICE_FORMS[m][4] == 12),
    "colbert",
    "colbert-index",
    "cross-encoder-l6",
    *(f"{m}{w}" for m in MICE_FORMS for w in ("", "-index", "-index-kv") if MICE_FORMS[m][4] == 6),
]
LABELS = {
    "cross-encoder": "Cross-encoder (MiniLM-L12)",
    "cross-encoder-l6": "Cross-encoder (MiniLM-L6 shape)",
    "colbert": "ColBERT (MiniLM-L12, 128d), on the fly",
    "colbert-index": "ColBERT, index (fp16)",
}
for _form, (_label, *_) in MICE_FORMS.items():
    LABELS.update(
        {
            _form: f"{_label}, on the fly",
            f"{_form}-index": f"{_label}, index (fp16 states)",
            f"{_form}-index-kv": f"{_label}, index + cached K/V",
        }
    )


def mice_form(system: str) -> str | None:
    """The MICE form a system runs (None: not MICE)."""
    return next(
        (m for m in sorted(MICE_FORMS, key=len, reverse=True) if system in (m, f"{m}-index", f"{m}-index-kv")), None
    )


def encoder_layers(system: str) -> int:
    """The depth of the encoder a system is built from (its cross-encoder is the one it is compared with)."""
    form = mice_form(system)
    return MICE_FORMS[form][4] if form else CROSS_ENCODERS.get(system, 12)


SECTIONS = ["frame", "model", "tokenise", "lookup", "read", "encode", "interaction"]


def device_and_dtype(args):
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, (args.dtype if device.startswith("cuda") else None)


def build(system, workdir, docs, device="cpu", dtype=None):
    from pyterrier_mice import (
        ColBERTModel,
        ColBERTReranker,
        CrossEncoderReranker,
        DocStateIndex,
        MaskedCrossEncoderModel,
        MiceModel,
        MiceReranker,
    )

    tok = tokenizer()
    if system in CROSS_ENCODERS:
        return CrossEncoderReranker(
            MaskedCrossEncoderModel.from_encoder(minilm_l12_encoder(layers=CROSS_ENCODERS[system]), tok),
            tok,
            batch_size=docs,
            max_length=512,
            device=device,
            dtype=dtype,
        )
    if system.startswith("colbert"):
        path = os.path.join(workdir, "colbert")
        model = (
            ColBERTModel.from_pretrained(path)
            if os.path.exists(path)
            else ColBERTModel.from_encoder(
                minilm_l12_encoder(), tok, query_length=32, doc_length=512, input_form="reference"
            )
        )
        index = DocStateIndex(os.path.join(workdir, "index-colbert")) if system.endswith("index") else None
        return ColBERTReranker(model, tok, batch_size=docs, device=device, dtype=dtype, index=index)
    form = mice_form(system)
    path = os.path.join(workdir, form)
    _, options, first, k, layers, _ = MICE_FORMS[form]
    model = (
        MiceModel.from_pretrained(path)
        if os.path.exists(path)
        else MiceModel.from_encoder(minilm_l12_encoder(layers=layers), tok, first, k, **options)
    )
    index = None
    if system != form:
        index = DocStateIndex(os.path.join(workdir, f"index-{form}" + ("-kv" if system.endswith("kv") else "")))
    return MiceReranker(model, tok, batch_size=docs, doc_max_length=512, device=device, dtype=dtype, index=index)


def prepare(workdir, docs, systems):
    """Save the models and build the indexes the systems read (outside the timed processes)."""
    from pyterrier_mice import DocStateIndex

    corpus = frame(docs)[["docno", "text"]].to_dict("records")
    for form in MICE_FORMS:
        if not any(mice_form(s) == form for s in systems):
            continue
        rr = build(form, workdir, docs)
        rr.model.save_pretrained(os.path.join(workdir, form))
        for kv in (False, True):
            if f"{form}-index" + ("-kv" if kv else "") in systems:
                DocStateIndex(os.path.join(workdir, f"index-{form}" + ("-kv" if kv else ""))).indexer(rr, kv=kv).index(
                    corpus
                )
    if any(s.startswith("colbert") for s in systems):
        colbert = build("colbert", workdir, docs)
        colbert.model.save_pretrained(os.path.join(workdir, "colbert"))
        if "colbert-index" in systems:
            DocStateIndex(os.path.join(workdir, "index-colbert")).indexer(colbert).index(corpus)


def measure(system, workdir, docs, runs, warmup, device, dtype):
    from pyterrier_mice.rerankers import profiling

    rr = build(system, workdir, docs, device, dtype)
    df = frame(docs)
    loaded = rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        sync = torch.cuda.synchronize
    else:
        sync = None
    mean, sd = time_it(lambda: rr(df), warmup, runs, sync)
    peak = torch.cuda.max_memory_allocated() / 2**20 if sync else peak_rss_mb()
    with profiling.recording(device) as prof:
        rr(df)
    with FlopCounterMode(display=False) as counter:  # the matmul/attention FLOPs one re-ranking executes
        rr(df)
    params = sum(p.numel() for p in rr.model.parameters())
    return {
        "system": system,
        "params": params,
        "mean": mean,
        "sd": sd,
        "docs_per_s": docs / mean,
        "peak_mb": peak,
        "increase_mb": peak - (0 if sync else loaded),
        "profile": prof.exclusive(),
        "flops": counter.get_total_flops(),
    }


def goals(rows, bases) -> list[str]:
    by = {r["system"]: r for r in rows}
    out = []

    def check(name, ok, detail):
        out.append(f"- {'met' if ok else 'NOT met'}: {name} ({detail})")

    base = bases[12]
    for system, target in [
        (f"{form}-index{w}", t) for form in MICE_FORMS for w, t in (("-kv", 100), ("", 40)) if MICE_FORMS[form][5]
    ]:
        if system in by:
            x = by[system]["docs_per_s"] / base["docs_per_s"]
            bound = base["flops"] / by[system]["flops"] if by[system].get("flops") else float("nan")
            check(
                f"{LABELS[system]} ≥ {target}× the cross-encoder",
                x >= target,
                f"{x:.1f}×; its FLOPs allow {bound:.1f}× at the cross-encoder's FLOP rate",
            )
    for system in [s for s in by if mice_form(s)]:
        own = bases[encoder_layers(system)]
        check(
            f"{LABELS[system]}: peak memory ≤ its cross-encoder's",
            by[system]["peak_mb"] <= own["peak_mb"],
            f"{by[system]['peak_mb']:.0f} vs {own['peak_mb']:.0f} MB",
        )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument(
        "--systems",
        nargs="*",
        default=SYSTEMS,
        choices=SYSTEMS,
        metavar="SYSTEM",
        help=f"which to measure (default: all): {', '.join(SYSTEMS)}",
    )
    ap.add_argument("--device", help="default: cuda when present, else cpu")
    ap.add_argument("--dtype", help="fp16 or bf16 on CUDA (the paper's table: fp32)")
    ap.add_argument("--out", help="also write the table (Markdown) here")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    device, dtype = device_and_dtype(args)
    if args._worker:
        print(json.dumps(measure(args._worker, args._workdir, args.docs, args.runs, args.warmup, device, dtype)))
        return
    workdir = tempfile.mkdtemp(prefix="mice-bench-")
    prepare(workdir, args.docs, args.systems)
    rows = []
    for system in args.systems:
        cmd = [
            sys.executable,
            __file__,
            "--_worker",
            system,
            "--_workdir",
            workdir,
            "--docs",
            str(args.docs),
            "--runs",
            str(args.runs),
            "--warmup",
            str(args.warmup),
            "--threads",
            str(args.threads),
            "--device",
            device,
        ] + (["--dtype", dtype] if dtype else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  measured {system}", file=sys.stderr)
    # each system against the cross-encoder of its own depth (the first row if that one was not run)
    bases = {n: next((r for r in rows if r["system"] == ce), rows[0]) for ce, n in CROSS_ENCODERS.items()}
    for r in rows:
        base = bases[encoder_layers(r["system"])]
        print(
            f"{r['system']}: {r['docs_per_s']:.1f} docs/s, {r['docs_per_s'] / base['docs_per_s']:.2f}x", file=sys.stderr
        )
    where = (
        f"CUDA ({torch.cuda.get_device_name()}), {dtype or 'fp32'}"
        if device.startswith("cuda")
        else f"CPU, {args.threads} threads, fp32"
    )
    memory = "peak CUDA memory (MB)" if device.startswith("cuda") else "peak RSS (MB)"
    lines = [
        f"Re-ranking 1 query × {args.docs} docs × 512 tokens; MiniLM-L12-H384 shape (the 6-layer rows: "
        f"its first 6 layers); {where}; {args.runs} timed runs after {args.warmup} warm-up; tokenisation "
        "included. Each row is compared with the cross-encoder of its own depth.",
        "",
        f"| system | params | latency (ms) | docs/s | × cross-encoder | GFLOP / doc | FLOP bound (×) "
        f"| GFLOP/s | {memory} | increase (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = bases[encoder_layers(r["system"])]
        flops = r.get("flops") or float("nan")
        lines.append(
            f"| {LABELS[r['system']]} | {r['params'] / 1e6:.1f}M | {r['mean'] * 1000:.0f} ± {r['sd'] * 1000:.0f} "
            f"| {r['docs_per_s']:.1f} | {r['docs_per_s'] / base['docs_per_s']:.2f} | {flops / args.docs / 1e9:.3f} "
            f"| {base['flops'] / flops:.1f} | {flops / r['mean'] / 1e9:.1f} | {r['peak_mb']:.0f} "
            f"| {r['increase_mb']:.0f} |"
        )
    lines += [
        "",
        "GFLOP / doc: the matrix-product and attention FLOPs one re-ranking executes (torch's "
        "FlopCounterMode), per document; FLOP bound: the cross-encoder's FLOPs over the system's, i.e. "
        "the speed-up it would have at the cross-encoder's FLOP rate; GFLOP/s: the rate it reached.",
    ]
    lines += [
        "",
        "Where the time goes (% of one profiled run; sections exclusive of those nested in them; "
        "'model' is the re-ranker's own glue around them, 'frame' the PyTerrier frame work):",
        "",
        "| system | " + " | ".join(SECTIONS) + " |",
        "|---|" + "---|" * len(SECTIONS),
    ]
    for r in rows:
        total = sum(r["profile"].values()) or 1.0
        lines.append(
            f"| {LABELS[r['system']]} | "
            + " | ".join(f"{100 * r['profile'].get(k, 0.0) / total:.1f}" for k in SECTIONS)
            + " |"
        )
    lines += ["", "Goals:", ""] + goals(rows, bases)
    report(lines, args.out)


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
