"""The efficiency table (the paper's Table 5, with the tools users would pick instead): re-ranking
1 query × N docs × 512 tokens, on CUDA (with --precision fp16/bf16 if asked) when a GPU is present,
else on CPU.

    python benchmarks/efficiency.py [--docs 128] [--runs 3] [--threads 2] [--precision fp16] [--out table.md]

Besides latency, docs/s, peak memory and the FLOPs each system executes per document (and so the
speed-up its arithmetic allows, and the share of it reached), it prints where each system's time
goes (a profile of one extra run: tokenisation, reading and decoding stored states, the bottom
layers, the interaction layers, the head, and PyTerrier's frame work with the re-ranker's glue)
and checks the performance goals (below).

Systems: the cross-encoder; MICE-ℓ4+3 on the fly, from a precomputed index (fp16 states) and
from an index with cached per-layer K/V, in the paper's form and in the authors' newer one
(cross-attention first, ``[CLS]`` reading the document; also with their exact-match heads, whose
index stores the document token ids and, with K/V, each layer's exact-match values); ColBERT (128d,
documents of 512 tokens as in the paper's table) on the fly and from an index; all with the
MiniLM-L12-H384 shape. Then the models ``pyterrier-mice derive`` makes (its default form):
MICE-ℓ4+8 of the 12-layer cross-encoder, and MICE-ℓ2+4 of a 6-layer one beside that cross-encoder.

Peers, on the same weights, pairs, threads and precision (``benchmarks/peers.py``; the bench
extra): sentence-transformers' ``CrossEncoder.predict`` beside each cross-encoder, and PyLate's
ColBERT (a checkpoint in PyLate's layout, run by sentence-transformers' ``MultiVectorEncoder``)
beside ColBERT; each peer's scores are compared with this package's (max |Δ score| in the notes).
A peer that is not installed is left out with the command that installs it.

Each system runs in its own process so that its peak memory (VmHWM: peak resident memory,
which includes the weights, the Python runtime and the mapped pages of an index) is its own;
"increase" is the peak minus the resident memory after loading. CPU numbers: the paper's are on
a GPU.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

import peers
from common import (
    PrivatePeak,
    flop_counter,
    frame,
    minilm_l12_encoder,
    peak_rss_mb,
    report,
    rss_mb,
    time_it,
    tokenizer,
)

from pyterrier_mice.training.derive import DEFAULT_FORM, FORMS


def _options(form: dict) -> dict:
    """A ``derive`` form (``{"model.key": value}``) as MiceConfig options."""
    return {key.removeprefix("model."): value for key, value in form.items()}


#: MICE systems: name → (label, MiceConfig options, ℓ*, interaction layers, encoder layers)
MICE_FORMS = {
    "mice": ("MICE-ℓ4+3", {}, 4, 3, 12),
    "mice-newer": (
        "MICE-ℓ4+3 newer form",
        {"interaction": "cross_first", "cls_cross_attention": "attend"},
        4,
        3,
        12,
    ),
    "mice-newer-em": (
        "MICE-ℓ4+3 newer + exact match",
        {"interaction": "cross_first", "cls_cross_attention": "attend", "exact_match_heads": True},
        4,
        3,
        12,
    ),
    # what `pyterrier-mice derive` makes (its default form): ℓ* a third of the layers, every layer above kept
    "derived-l12": (
        f"derive's MICE-ℓ4+8 of 12 layers ({DEFAULT_FORM} form)",
        _options(FORMS[DEFAULT_FORM]),
        4,
        8,
        12,
    ),
    "derived-l6": (
        f"derive's MICE-ℓ2+4 of 6 layers ({DEFAULT_FORM} form)",
        _options(FORMS[DEFAULT_FORM]),
        2,
        4,
        6,
    ),
}
CROSS_ENCODERS = {"cross-encoder": 12, "cross-encoder-l6": 6}
#: the peer cross-encoder each of this package's cross-encoders is compared with
PEER_OF = {ours: peer for peer, (_, ours) in peers.PEERS.items() if ours in CROSS_ENCODERS}
SYSTEMS = [
    "cross-encoder",
    "st-cross-encoder",
    *(f"{m}{w}" for m in MICE_FORMS for w in ("", "-index", "-index-kv") if MICE_FORMS[m][4] == 12),
    "colbert",
    "colbert-index",
    "pylate-colbert",
    "cross-encoder-l6",
    "st-cross-encoder-l6",
    *(f"{m}{w}" for m in MICE_FORMS for w in ("", "-index", "-index-kv") if MICE_FORMS[m][4] == 6),
    # reduced precision (CPU: bf16 autocast, int8 quantised linear layers), and the ONNX Runtime peer
    *(
        f"{s}@{p}"
        for s in ("cross-encoder", "mice", "mice-index", "mice-index-kv", "colbert-index")
        for p in ("bf16", "int8")
    ),
    "flashrank",
]
LABELS = {
    "cross-encoder": "Cross-encoder (MiniLM-L12)",
    "cross-encoder-l6": "Cross-encoder (MiniLM-L6 shape)",
    "colbert": "ColBERT (MiniLM-L12, 128d), on the fly",
    "colbert-index": "ColBERT, index (fp16)",
    **{peer: f"peer: {label}" for peer, (label, _) in peers.PEERS.items()},
}
for _form, (_label, *_) in MICE_FORMS.items():
    LABELS.update(
        {
            _form: f"{_label}, on the fly",
            f"{_form}-index": f"{_label}, index (fp16 states)",
            f"{_form}-index-kv": f"{_label}, index + cached K/V",
        }
    )


def split_precision(system: str) -> tuple[str, str | None]:
    """``"mice-index@int8"`` → ``("mice-index", "int8")``; a system without one runs in fp32 (or --precision)."""
    base, _, precision = system.partition("@")
    return base, precision or None


def label(system: str) -> str:
    base, precision = split_precision(system)
    return LABELS[base] + (f", {precision}" if precision else "")


def mice_form(system: str) -> str | None:
    """The MICE form a system runs (None: not MICE)."""
    system = split_precision(system)[0]
    return next(
        (m for m in sorted(MICE_FORMS, key=len, reverse=True) if system in (m, f"{m}-index", f"{m}-index-kv")), None
    )


def encoder_layers(system: str) -> int:
    """The depth of the encoder a system is built from (its cross-encoder is the one it is compared with)."""
    form = mice_form(system)
    if form:
        return MICE_FORMS[form][4]
    system = split_precision(system)[0]
    return CROSS_ENCODERS.get(peers.PEERS[system][1] if system in peers.PEERS else system, 12)


#: the breakdown's columns: (heading, profiled sections summed into it)
STAGES = [
    ("tokenise", ("tokenise",)),
    ("read + decode states", ("read",)),
    ("bottom layers", ("encode",)),
    ("interaction layers", ("interaction",)),
    ("head", ("head",)),
    ("PyTerrier + glue", ("frame", "model", "lookup")),
]
OVERHEAD = STAGES[-1][1]


def time_head(reranker):
    """Profile the model's score head as its own section (nested in encode or interaction)."""
    from pyterrier_mice.rerankers import profiling

    backbone = getattr(reranker.model, "backbone", None)
    if backbone is None or not hasattr(backbone, "score_head"):
        return
    head = backbone.score_head

    def timed(*args, **kwargs):
        with profiling.section("head"):
            return head(*args, **kwargs)

    backbone.score_head = timed


def device_and_precision(args):
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, (args.precision if device.startswith("cuda") else None)


def build(system, workdir, docs, device="cpu", precision=None):
    system, own = split_precision(system)
    precision = own or precision
    from pyterrier_mice import (
        ColBERTModel,
        ColBERTReranker,
        CrossEncoderReranker,
        MiceIndex,
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
            precision=precision,
        )
    if system.startswith("colbert"):
        path = os.path.join(workdir, "colbert")
        model = (
            ColBERTModel.from_pretrained(path)
            if os.path.exists(path)
            else ColBERTModel.from_encoder(  # ColBERT's own input form: PyLate's scores equal it
                minilm_l12_encoder(), tok, query_max_length=32, doc_max_length=512, input_form="standard"
            )
        )
        index = MiceIndex(os.path.join(workdir, "index-colbert")) if system.endswith("index") else None
        return ColBERTReranker(model, tok, batch_size=docs, device=device, precision=precision, index=index)
    form = mice_form(system)
    path = os.path.join(workdir, form)
    _, options, first, k, layers = MICE_FORMS[form]
    model = (
        MiceModel.from_pretrained(path)
        if os.path.exists(path)
        else MiceModel.from_encoder(minilm_l12_encoder(layers=layers), tok, first, k, **options)
    )
    index = None
    if system != form:
        index = MiceIndex(os.path.join(workdir, f"index-{form}" + ("-kv" if system.endswith("kv") else "")))
    return MiceReranker(
        model, tok, batch_size=docs, doc_max_length=512, device=device, precision=precision, index=index
    )


def prepare(workdir, docs, systems):
    """Save the models and build the indexes the systems read (outside the timed processes)."""
    from pyterrier_mice import MiceIndex

    corpus = frame(docs)[["docno", "text"]].to_dict("records")
    systems = [split_precision(s)[0] for s in systems]
    for form in MICE_FORMS:
        if not any(mice_form(s) == form for s in systems):
            continue
        rr = build(form, workdir, docs)
        rr.model.save_pretrained(os.path.join(workdir, form))
        for kv in (False, True):
            if f"{form}-index" + ("-kv" if kv else "") in systems:
                MiceIndex(os.path.join(workdir, f"index-{form}" + ("-kv" if kv else ""))).indexer(rr, kv=kv).index(
                    corpus
                )
    if any(s.startswith("colbert") or s == "pylate-colbert" for s in systems):
        colbert = build("colbert", workdir, docs)
        colbert.model.save_pretrained(os.path.join(workdir, "colbert"))
        if "colbert-index" in systems:
            MiceIndex(os.path.join(workdir, "index-colbert")).indexer(colbert).index(corpus)
        if "pylate-colbert" in systems:
            peers.save_colbert(colbert.model, colbert.tokenizer, os.path.join(workdir, "pylate-colbert"))
    for peer in ("st-cross-encoder", "st-cross-encoder-l6"):
        if peer in systems:
            ce = build(peers.PEERS[peer][1], workdir, docs)
            peers.save_cross_encoder(ce.model, ce.tokenizer, os.path.join(workdir, peer))
    if "flashrank" in systems:
        ce = build("cross-encoder", workdir, docs)
        peers.save_flashrank(ce.model, ce.tokenizer, os.path.join(workdir, "flashrank"))
    if hasattr(os, "sync"):  # the indexes written reach the disk now, not during the first timings
        os.sync()


def build_peer(system, workdir, docs, device="cpu", precision=None):
    """A peer's ``score(frame)`` and model, from the folder :func:`prepare` saved."""
    folder = os.path.join(workdir, system)
    if system == "pylate-colbert":
        score, model = peers.pylate_colbert(folder, docs, device)
    elif system == "flashrank":
        score, ranker = peers.flashrank(folder)
        return score, build("cross-encoder", workdir, docs).model  # the parameters it quantised
    else:
        score, model = peers.st_cross_encoder(folder, docs, 512, device)
    if precision:
        model.to({"fp16": torch.float16, "bf16": torch.bfloat16}[precision])
    return score, model


def measure(system, workdir, docs, runs, warmup, device, precision):
    from pyterrier_mice.rerankers import profiling

    df = frame(docs)
    if system in peers.PEERS:
        score, model = build_peer(system, workdir, docs, device, precision)
    else:
        rr = build(system, workdir, docs, device, precision)
        time_head(rr)
        model = rr.model

        def score(df):  # in the frame's row order
            return rr(df).set_index("docno")["score"].loc[df["docno"]].to_numpy()

    loaded = rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        sync = torch.cuda.synchronize
    else:
        sync = None
    with PrivatePeak() as private:
        mean, sd = time_it(lambda: score(df), warmup, runs, sync)
    peak = torch.cuda.max_memory_allocated() / 2**20 if sync else peak_rss_mb()
    with profiling.recording(device) as prof:
        start = time.perf_counter()
        scores = score(df)
        profiled = time.perf_counter() - start
    np.save(os.path.join(workdir, f"scores-{system}.npy"), np.asarray(scores, dtype=np.float64))
    flops = None  # int8 layers run kernels FlopCounterMode does not count: their rows show no FLOPs
    if split_precision(system)[1] != "int8":
        try:
            with flop_counter() as counter:  # the matmul/attention FLOPs one re-ranking executes
                score(df)
            flops = counter.get_total_flops()
        except RuntimeError:  # torch's decomposition of einsum under FlopCounterMode fails in bf16 autocast
            flops = None
    params = sum(p.numel() for p in model.parameters())
    return {
        "system": system,
        "params": params,
        "mean": mean,
        "sd": sd,
        "docs_per_s": docs / mean,
        "peak_mb": peak,
        "increase_mb": peak - (0 if sync else loaded),
        "private_mb": float("nan") if sync else private.peak_mb,
        "profile": prof.exclusive(),
        "profiled_s": profiled,
        "flops": flops,
    }


#: speed goals: (MICE form, path) → minimum × the cross-encoder
SPEED_GOALS = {
    ("mice", "-index"): 150,
    ("mice", "-index-kv"): 200,
    ("mice-newer", "-index"): 150,
    ("mice-newer", "-index-kv"): 200,
    ("mice-newer-em", "-index"): 80,
    ("mice-newer-em", "-index-kv"): 200,
}


def overhead_share(row) -> float:
    """PyTerrier's frame work and the re-ranker's glue, as a share of the profiled run."""
    return sum(row["profile"].get(k, 0.0) for k in OVERHEAD) / row["profiled_s"]


def goals(rows, bases) -> list[str]:
    by = {r["system"]: r for r in rows}
    out = []

    def check(name, ok, detail):
        out.append(f"- {'met' if ok else 'NOT met'}: {name} ({detail})")

    for peer, (_, ours) in peers.PEERS.items():
        if ours in by and peer in by:
            x = by[ours]["docs_per_s"] / by[peer]["docs_per_s"]
            check(f"{label(ours)} at least as fast as {label(peer)}", x >= 1, f"{x:.2f}×")
    base = bases[12]
    for (form, path), target in SPEED_GOALS.items():
        system = form + path
        if system in by:
            x = by[system]["docs_per_s"] / base["docs_per_s"]
            bound = base["flops"] / by[system]["flops"] if by[system].get("flops") else float("nan")
            check(
                f"{label(system)} ≥ {target}× the cross-encoder",
                x >= target,
                f"{x:.1f}×; its FLOPs allow {bound:.1f}× at the cross-encoder's FLOP rate",
            )
    for system in [s for s in by if mice_form(s) and s.endswith(("-index", "-index-kv"))]:
        share = overhead_share(by[system])
        check(f"{label(system)}: PyTerrier + glue ≤ 5% of its time", share <= 0.05, f"{100 * share:.1f}%")
    for system in [s for s in by if mice_form(s)]:
        own, row = bases[encoder_layers(system)], by[system]
        private = row.get("private_mb", float("nan"))
        if private == private:  # measured (CPU): held on private memory, VmHWM shown beside it
            check(
                f"{label(system)}: peak private memory ≤ its cross-encoder's",
                private <= own["private_mb"],
                f"{private:.0f} vs {own['private_mb']:.0f} MB; peak RSS {row['peak_mb']:.0f} vs "
                f"{own['peak_mb']:.0f} MB, with the index's mapped pages",
            )
        else:
            check(
                f"{label(system)}: peak memory ≤ its cross-encoder's",
                row["peak_mb"] <= own["peak_mb"],
                f"{row['peak_mb']:.0f} vs {own['peak_mb']:.0f} MB",
            )
    return out


def agreement(workdir, rows) -> list[str]:
    """Each peer's scores against this package's system of the same weights (max |Δ score|)."""
    lines = []
    measured = {r["system"] for r in rows}
    for peer, (peer_label, ours) in peers.PEERS.items():
        if peer in measured and ours in measured:
            a, b = (np.load(os.path.join(workdir, f"scores-{x}.npy")) for x in (peer, ours))
            lines.append(f"- {peer_label} vs {label(ours)}: max |Δ score| = {np.abs(a - b).max():.2g}")
    return lines


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
    ap.add_argument("--precision", help="every system in fp16 or bf16 on CUDA (the paper's table: fp32)")
    ap.add_argument("--out", help="also write the table (Markdown) here")
    ap.add_argument(
        "--agreement",
        help="the ranking cost of each precision (benchmarks/pareto.py's JSON): its columns beside the speeds",
    )
    ap.add_argument("--goals", action="store_true", help="also check the performance goals (a developer's check)")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    device, precision = device_and_precision(args)
    if args._worker:
        print(json.dumps(measure(args._worker, args._workdir, args.docs, args.runs, args.warmup, device, precision)))
        return
    how = peers.missing()
    missing = {p: how for p in args.systems if p in peers.PEERS} if how else {}
    for peer, how in missing.items():
        print(f"  {peer} left out: not installed here ({how})", file=sys.stderr)
    systems = [s for s in args.systems if s not in missing]
    workdir = tempfile.mkdtemp(prefix="mice-bench-")
    prepare(workdir, args.docs, systems)
    rows = []
    for system in systems:
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
        ] + (["--precision", precision] if precision else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  measured {system}", file=sys.stderr)
    # each system against the cross-encoder of its own depth (the first row if that one was not run),
    # and against the peer cross-encoder of that depth where it ran
    bases = {n: next((r for r in rows if r["system"] == ce), rows[0]) for ce, n in CROSS_ENCODERS.items()}
    peer_bases = {n: next((r for r in rows if r["system"] == PEER_OF[ce]), None) for ce, n in CROSS_ENCODERS.items()}
    where = (
        f"CUDA ({torch.cuda.get_device_name()}), {precision or 'fp32'}"
        if device.startswith("cuda")
        else f"CPU, {args.threads} threads, fp32"
    )
    memory = "peak CUDA memory (MB)" if device.startswith("cuda") else "peak RSS (MB)"
    lines = [
        f"Re-ranking 1 query × {args.docs} docs × 512 tokens; MiniLM-L12-H384 shape (the 6-layer rows: "
        f"its first 6 layers); {where}; {args.runs} timed runs after {args.warmup} warm-up; tokenisation "
        "included. Each row is compared with the cross-encoder of its own depth, and with the peer "
        "cross-encoder (sentence-transformers) of that depth.",
        "",
        f"| system | params | latency (ms) | docs/s | × cross-encoder | × peer CE | GFLOP / doc | FLOP bound (×) "
        f"| GFLOP/s | share of bound | {memory} | increase (MB) | peak private (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base, peer = bases[encoder_layers(r["system"])], peer_bases[encoder_layers(r["system"])]
        flops = r.get("flops") or float("nan")
        x = r["docs_per_s"] / base["docs_per_s"]
        bound = base["flops"] / flops
        vs_peer = f"{r['docs_per_s'] / peer['docs_per_s']:.2f}" if peer else "—"
        lines.append(
            f"| {label(r['system'])} | {r['params'] / 1e6:.1f}M | {r['mean'] * 1000:.0f} ± {r['sd'] * 1000:.0f} "
            f"| {r['docs_per_s']:.1f} | {x:.2f} | {vs_peer} | {flops / args.docs / 1e9:.3f} "
            f"| {bound:.1f} | {flops / r['mean'] / 1e9:.1f} | {100 * x / bound:.0f}% | {r['peak_mb']:.0f} "
            f"| {r['increase_mb']:.0f} | {r.get('private_mb', float('nan')):.0f} |"
        )
    lines += [
        "",
        "GFLOP / doc: the matrix-product and attention FLOPs one re-ranking executes (torch's "
        "FlopCounterMode, with the CPU attention kernel counted: torch counts it as 0), per document; "
        "FLOP bound: the cross-encoder's FLOPs over the system's, i.e. "
        "the speed-up it would have at the cross-encoder's FLOP rate; GFLOP/s: the rate it reached; "
        "share of bound: the speed-up reached over the FLOP bound (its GFLOP/s over the cross-encoder's); "
        "peak RSS: VmHWM, which counts the pages of an index mapped from disk (page cache: clean, dropped "
        "under memory pressure); peak private: the peak of the anonymous memory (RssAnon, sampled every "
        "2 ms) over the timed runs, what the process itself holds.",
    ]
    if missing:
        lines += ["", "Left out (not installed): " + "; ".join(f"{p} (`{how}`)" for p, how in missing.items())]
    same = agreement(workdir, rows)
    if same:
        lines += ["", "Peers on the same weights and inputs, scores against this package's:", "", *same]
    lines += [
        "",
        "Where the time goes (% of one profiled run; each stage exclusive of the stages nested in it; "
        "'PyTerrier + glue': PyTerrier's frame work (validation, dedup, ranks, sort), the index lookup and "
        "the re-ranker's batching; peers are one call each, not broken down):",
        "",
        "| system | " + " | ".join(name for name, _ in STAGES) + " | other |",
        "|---|" + "---|" * (len(STAGES) + 1),
    ]
    for r in rows:
        if not r["profile"]:
            continue
        total = r["profiled_s"]
        parts = [sum(r["profile"].get(k, 0.0) for k in keys) for _, keys in STAGES]
        lines.append(
            f"| {label(r['system'])} | "
            + " | ".join(f"{100 * p / total:.1f}" for p in parts)
            + f" | {100 * (total - sum(parts)) / total:.1f} |"
        )
    if args.agreement:
        lines += ["", *agreement_table(rows, bases, args.agreement)]
    if args.goals:
        lines += ["", "Goals:", ""] + goals(rows, bases)
    report(lines, args.out)


def agreement_table(rows, bases, path: str) -> list[str]:
    """The reduced-precision rows, each speed beside its ranking cost against fp32 on a real collection
    (measured by benchmarks/pareto.py with trained models of the same path)."""
    with open(path) as f:
        cost = json.load(f)
    by = {r["system"]: r for r in rows}
    lines = [
        f"Reduced precision: each row's speed-up over the same path in fp32 (this table), and its ranking cost "
        f"against fp32 on {cost['collection']} (benchmarks/pareto.py: trained models of the same path; max |Δ "
        "score|, mean Kendall τ per query, ΔnDCG@10):",
        "",
        "| system | × itself in fp32 | × cross-encoder fp32 | max abs Δ score | Kendall τ | ΔnDCG@10 |",
        "|---|---|---|---|---|---|",
    ]
    for system, row in by.items():
        base, precision = split_precision(system)
        if not precision and system != "flashrank":
            continue
        fp32 = by.get(base if precision else "cross-encoder")
        own = f"{row['docs_per_s'] / fp32['docs_per_s']:.2f}" if fp32 else "—"
        vs_ce = row["docs_per_s"] / bases[encoder_layers(system)]["docs_per_s"]
        c = cost["rows"].get(system, {})
        cells = [
            f"{c[k]:{fmt}}" if k in c else "—" for k, fmt in (("max_abs", ".3g"), ("kendall", ".3f"), ("delta", "+.4f"))
        ]
        lines.append(f"| {label(system)} | {own} | {vs_ce:.2f} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
