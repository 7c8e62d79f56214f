"""Run as a process by the index tests: opens a re-ranker over an index once, says READY, waits for a
line on its input, then scores the test frame again and again for ``seconds``, printing each result
(JSON) or the error it met."""

import json
import sys
import time

import pandas as pd

from pyterrier_mice import MiceIndex, MiceReranker

from conftest import DOCS, QUERIES


def main(model_path, index_path, seconds):
    frame = pd.DataFrame(
        [{"qid": q, "query": QUERIES[q], "docno": d, "text": " ".join(t)} for q in ("1", "3") for d, t in DOCS.items()]
    )
    rr = MiceReranker.from_pretrained(model_path, batch_size=4, index=MiceIndex(index_path))
    rr.index.verify_mode  # opened (manifest, files) when the re-ranker checked it
    print("READY", flush=True)
    sys.stdin.readline()
    end = time.time() + float(seconds)
    while time.time() < end:
        try:
            res = rr(frame).set_index(["qid", "docno"])["score"]
            print(json.dumps({f"{q}/{d}": float(v) for (q, d), v in res.items()}), flush=True)
        except Exception as e:  # reported to the test
            print(f"ERROR {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
