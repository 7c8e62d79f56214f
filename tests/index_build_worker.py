"""Run as a process by the index tests: builds an index of the test corpus with one model,
slowly (``delay`` seconds per document), and prints OK or the error it met."""

import sys
import time

from pyterrier_mice import MiceIndex, MiceReranker

from conftest import DOCS


def main(model_path, index_path, delay, wait, overwrite):
    rr = MiceReranker.from_pretrained(model_path, batch_size=2)

    def slow():
        for docno, parts in DOCS.items():
            time.sleep(float(delay))
            yield {"docno": docno, "text": " ".join(parts)}

    try:
        MiceIndex(index_path).indexer(
            rr, storage="fp32", wait=wait == "wait", overwrite=overwrite == "overwrite"
        ).index(slow())
        print("OK", flush=True)
    except Exception as e:  # reported to the test
        print(f"{type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
