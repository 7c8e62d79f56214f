"""A first success in minutes, offline, on CPU: BM25 → a cross-encoder → MICE derived from it, on the
bundled cranfield-mini collection, in one pt.Experiment with significance tests.

    python examples/quickstart.py

The cross-encoder is trained here for a few dozen steps from the MiniLM-L6 weights of the test
extra, and MICE-ℓ3+3 is derived from it (initialised from it, distilled from it); both are cached
under runs/tutorial. The numbers show the pipeline running, not what the models can do: for that,
see the README's main job and experiments.

Every run prints the same table on one machine: the seeds are fixed, the thread count is fixed
here (2; the order of floating-point sums depends on it) and torch uses deterministic
algorithms. Another CPU type may differ in the last digits.
"""
import random
import time
import warnings

import numpy as np
import torch

THREADS = 2
torch.set_num_threads(THREADS)
torch.use_deterministic_algorithms(True)
random.seed(0)
np.random.seed(0)
torch.manual_seed(0)

import pyterrier as pt  # noqa: E402  (after the settings above)
from pyterrier.measures import RR, nDCG  # noqa: E402

from pyterrier_mice import CrossEncoderReranker, MiceReranker, tutorial  # noqa: E402

start = time.time()
warnings.filterwarnings("ignore", message=".*truncated.*")
s = tutorial.setting("offline")
print(s.describe(), flush=True)
ds, bm25, get_text = tutorial.first_stage(s)
ce_path = tutorial.cross_encoder(s)                  # trained once, then cached
mice_path = tutorial.derive_mice(s, ce_path)         # initialised from the cross-encoder, distilled from it
ce = CrossEncoderReranker.from_pretrained(ce_path)
mice = MiceReranker.from_pretrained(mice_path)
table = pt.Experiment([bm25, bm25 >> get_text >> ce, bm25 >> get_text >> mice], ds.topics, ds.qrels,
                      [nDCG @ 10, RR @ 10], names=["BM25", "cross-encoder", "MICE (derived)"],
                      baseline=0, correction="holm", round=3)
print(table[["name", "nDCG@10", "RR@10", "nDCG@10 p-value corrected", "nDCG@10 reject"]].to_string(index=False))
print(f"\n{len(ds.topics)} test queries, BM25 top-{s.k}; done in {time.time() - start:.0f} s")
