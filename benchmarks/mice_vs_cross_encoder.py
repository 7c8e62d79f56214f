"""MICE vs the cross-encoder on the same backbone shape, without precomputation (CPU).

    python benchmarks/mice_vs_cross_encoder.py [--docs 128] [--runs 3] [--threads 2]

Prints docs/s for each and the ratio (paper: 2× on GPU without precomputation).
"""
import argparse
import warnings

import torch

from common import frame, minilm_l12_encoder, time_it, tokenizer
from pyterrier_mice import CrossEncoderReranker, MaskedCrossEncoderModel, MiceModel, MiceReranker


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    tok = tokenizer()
    df = frame(args.docs)
    ce = CrossEncoderReranker(MaskedCrossEncoderModel.from_encoder(minilm_l12_encoder(), tok), tok,
                              batch_size=args.docs, max_length=512, device="cpu")
    mice = MiceReranker(MiceModel.from_encoder(minilm_l12_encoder(), tok, 4, 3), tok,
                        batch_size=args.docs, doc_max_length=512, device="cpu")
    print(f"1 query x {args.docs} docs x 512 tokens, MiniLM-L12-H384 shape, fp32, CPU, "
          f"{args.threads} threads, {args.runs} timed runs after {args.warmup} warm-up")
    rows = []
    for name, rr in [("cross-encoder", ce), ("MICE-l4+3 (no precompute)", mice)]:
        mean, sd = time_it(lambda: rr(df), args.warmup, args.runs)
        rows.append((name, mean, sd, args.docs / mean))
        print(f"{name:<28} {mean * 1000:9.1f} ± {sd * 1000:6.1f} ms   {args.docs / mean:8.1f} docs/s")
    print(f"ratio MICE / cross-encoder: {rows[1][3] / rows[0][3]:.2f}x (paper: 2x on GPU)")


if __name__ == "__main__":
    main()
