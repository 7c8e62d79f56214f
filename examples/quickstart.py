"""A first success in minutes, offline, on CPU: BM25, then re-rankers of its top-20 on the bundled
cranfield-mini collection, in one pt.Experiment with significance tests.

    python examples/quickstart.py

- MiniLM cosine: the MiniLM-L6 of the test extra as a bi-encoder, zero-shot;
- cross-encoder: trained here for a few dozen steps from the same weights (the loss of
  configs/ce.yaml: the judged documents, and that cosine as a teacher; without the recipe's cosine
  kept beside the model, to show what the model itself learnt);
- MICE: derived from the cross-encoder (initialised from it, distilled from it);
- "+ BM25": each fused with BM25's score, at the weight its training chose on held-out training queries.

The models are cached under runs/tutorial (a finished run keeps its weights, not its resume state).
With 15 test queries few differences are significant; the table says which.

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

from pyterrier_mice import BiEncoderReranker, CrossEncoderReranker, MiceReranker, ScoreFusion, tutorial  # noqa: E402
from pyterrier_mice.evaluation import verdicts  # noqa: E402

start = time.time()
warnings.filterwarnings("ignore", message=".*truncated.*")
s = tutorial.setting("offline")
print(s.describe(), flush=True)
ds, bm25, get_text = tutorial.first_stage(s)
ce_path = tutorial.cross_encoder(s)  # trained once, then cached
mice_path = tutorial.derive_mice(s, ce_path)  # initialised from the cross-encoder, distilled from it
cosine = BiEncoderReranker.from_pretrained(s.bi_encoder)
ce = CrossEncoderReranker.from_pretrained(ce_path)
mice = MiceReranker.from_pretrained(mice_path)
top = bm25 >> get_text
systems = {
    "BM25": bm25,
    "MiniLM cosine": top >> cosine,
    "cross-encoder": top >> ce,
    "cross-encoder + BM25": top >> ScoreFusion.from_pretrained(ce_path, ce),
    "MICE": top >> mice,
    "MICE + BM25": top >> ScoreFusion.from_pretrained(mice_path, mice),
}
table = pt.Experiment(
    list(systems.values()),
    ds.topics,
    ds.qrels,
    [nDCG @ 10, RR @ 10],
    names=list(systems),
    baseline=0,
    correction="holm",
    round=3,
)
print(table[["name", "nDCG@10", "RR@10", "nDCG@10 p-value corrected", "nDCG@10 reject"]].to_string(index=False))
print()
print(verdicts(table, "nDCG@10"))
print(f"\n{len(ds.topics)} test queries, BM25 top-{s.k}; done in {time.time() - start:.0f} s")
