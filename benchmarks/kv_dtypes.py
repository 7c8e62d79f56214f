"""What one interaction layer's stored K/V costs on this CPU, per dtype: the copy of the stored
K/V into the batch (the "read" of the index + K/V path) and attention over it (SDPA), for 128
documents × 512 keys and a query of 8 tokens in the MiniLM-L12-H384 shape. It shows whether a
bf16 model reading bf16-stored K/V would beat fp32 reading fp16 (what the index + K/V path does).

    python benchmarks/kv_dtypes.py [--threads 1] [--runs 5]
"""

import argparse
import time

import torch
import torch.nn.functional as F


def best_ms(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--docs", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    docs, heads, q_len, keys, head_dim = args.docs, 12, 8, 512, 32
    stored = torch.randn(docs * keys, 2, heads * head_dim)
    print(
        f"one interaction layer: {docs} docs × {keys} keys, query of {q_len} tokens, {heads} heads × {head_dim}; "
        f"{args.threads} thread(s), best of {args.runs}\n"
    )
    print("| step | stored → batch | ms |\n|---|---|---|")
    for src, dst in ((torch.float16, torch.float32), (torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16)):
        a, b = stored.to(src), torch.empty(stored.shape, dtype=dst)
        print(
            f"| copy K/V into the batch | {str(src)[6:]} → {str(dst)[6:]} "
            f"| {best_ms(lambda: b.copy_(a), args.runs):.1f} |"
        )
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        q = torch.randn(docs, heads, q_len, head_dim).to(dtype)
        k, v = (torch.randn(docs, heads, keys, head_dim).to(dtype) for _ in range(2))
        ms = best_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.runs)
        print(f"| attention (SDPA) | {str(dtype)[6:]} | {ms:.1f} |")


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
