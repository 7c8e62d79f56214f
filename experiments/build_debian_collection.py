"""A second test collection, not Cranfield, built from a public source that installs offline:
Debian's package descriptions (the ``Translation-en`` file of Debian 12 "bookworm", main, which
``apt`` fetches from any Debian mirror).

    python experiments/build_debian_collection.py --out runs/collections/debian

A query is a package's one-line synopsis ("PAM module for MIT Kerberos"); its one relevant document
is that package's long description, which does not repeat the synopsis word for word. The shape
follows BEIR SciFact's (~5k abstracts, ~800 training and 300 test queries, about one relevant
document each): 8,000 documents, 800 training and 300 test queries, each query's document in the
corpus with 6,900 others as distractors. No query or document is in both splits.

Kept: descriptions of 40 to 400 words whose first paragraph no other package shares (a library's
``-dev``/``-doc`` packages repeat it, and would be relevant too), that open with words few others
open with (descriptions generated from one template, the name filled in, are dropped), outside the
families that repeat a description per build, language or architecture (Rust crates, Haskell
libraries, dictionaries, toolchains, ...). Everything is chosen by a fixed seed from a fixed file
(its SHA-256 is checked), so that every build is the same collection.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import lzma
import os
import re
import urllib.request

import numpy as np

URL = "http://deb.debian.org/debian/dists/bookworm/main/i18n/Translation-en.xz"
#: SHA-256 of the file this collection was built from (Debian 12.15, its final point release)
SHA256 = "a3d4a0bfd8e9242810b0885eda7c1a6e05dac15b333ddbaab03ba56f2dfa4bf0"
#: packages that repeat another's description for another build, language or architecture
VARIANTS = re.compile(
    r"^(librust-|libghc-|hunspell-|myspell-|aspell-|hyphen-|mythes-|tesseract-ocr-|firefox-esr-l10n|"
    r"thunderbird-l10n|libreoffice-(l10n|help)|task-|linux-|gcc-|g\+\+-|gfortran-|gobjc|gccgo-|cpp-|"
    r"gdc-|gnat-)|-(dbg|dbgsym)$"
)
#: a description whose first words open more than this many others' is a template with a name filled in
TEMPLATE_OPENING_WORDS, TEMPLATE_USES = 6, 3
MIN_WORDS, MAX_WORDS = 40, 400
DOCS, TRAIN, TEST = 8000, 800, 300


def parse(lines) -> list[dict]:
    """``{package, synopsis, paragraphs}`` per record of a Translation file."""
    records, cur = [], None
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("Package: "):
            cur = {"package": line[len("Package: ") :], "synopsis": None, "lines": []}
            records.append(cur)
        elif line.startswith("Description-en: ") and cur is not None:
            cur["synopsis"] = line[len("Description-en: ") :].strip()
        elif line.startswith(" ") and cur is not None and cur["synopsis"] is not None:
            cur["lines"].append(line[1:].strip())
    for r in records:
        paragraphs, current = [], []
        for line in r.pop("lines"):
            if line == ".":
                if current:
                    paragraphs.append(" ".join(current))
                current = []
            else:
                current.append(line)
        if current:
            paragraphs.append(" ".join(current))
        r["paragraphs"] = paragraphs
    return records


def _opening(record: dict) -> str:
    return " ".join(record["paragraphs"][0].lower().split()[:TEMPLATE_OPENING_WORDS])


def build(records: list[dict], seed: int = 0) -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """The corpus, the queries and the query ids of each split (``train``, ``test``)."""
    records = [r for r in records if r["paragraphs"]]
    first = collections.Counter(r["paragraphs"][0] for r in records)
    opening = collections.Counter(_opening(r) for r in records)
    kept = []
    for r in records:
        text = " ".join(r["paragraphs"])
        if (
            first[r["paragraphs"][0]] > 1
            or opening[_opening(r)] > TEMPLATE_USES
            or VARIANTS.search(r["package"])
            or not MIN_WORDS <= len(text.split()) <= MAX_WORDS
        ):
            continue
        kept.append({"_id": r["package"], "title": "", "text": text, "synopsis": r["synopsis"]})
    kept.sort(key=lambda d: d["_id"])
    rng = np.random.RandomState(seed)
    corpus = [kept[i] for i in sorted(rng.choice(len(kept), size=DOCS, replace=False))]
    askable = [
        d
        for d in corpus
        if len(d["synopsis"].split()) >= 3 and d["synopsis"].lower().rstrip(".") not in d["text"].lower()
    ]
    picked = [askable[i] for i in rng.choice(len(askable), size=TRAIN + TEST, replace=False)]
    queries = [{"_id": f"q-{d['_id']}", "text": d["synopsis"], "doc": d["_id"]} for d in picked]
    splits = {"train": [q["_id"] for q in queries[:TRAIN]], "test": [q["_id"] for q in queries[TRAIN:]]}
    return corpus, queries, splits


def write(out: str, corpus, queries, splits) -> None:
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf8") as f:
        for d in corpus:
            f.write(json.dumps({"_id": d["_id"], "title": d["title"], "text": d["text"]}) + "\n")
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf8") as f:
        for q in queries:
            f.write(json.dumps({"_id": q["_id"], "text": q["text"]}) + "\n")
    doc_of = {q["_id"]: q["doc"] for q in queries}
    for split, qids in splits.items():
        with open(os.path.join(out, "qrels", f"{split}.tsv"), "w", encoding="utf8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid in qids:
                f.write(f"{qid}\t{doc_of[qid]}\t1\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join("runs", "collections", "debian"))
    ap.add_argument("--translation", help="a local Translation-en.xz (default: fetched from a Debian mirror)")
    ap.add_argument("--url", default=URL)
    args = ap.parse_args(argv)
    if args.translation:
        with open(args.translation, "rb") as f:
            raw = f.read()
    else:
        print(f"fetching {args.url} ...", flush=True)
        with urllib.request.urlopen(args.url, timeout=120) as r:
            raw = r.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise SystemExit(
            f"{args.translation or args.url}: SHA-256 {digest}, not the {SHA256} this collection is "
            "built from (a newer Debian release?); the collection would differ"
        )
    corpus, queries, splits = build(parse(lzma.decompress(raw).decode("utf8").splitlines()))
    write(args.out, corpus, queries, splits)
    print(
        f"{args.out}: {len(corpus)} documents, {len(splits['train'])} training and {len(splits['test'])} test "
        f"queries (BEIR layout)"
    )


if __name__ == "__main__":
    from pyterrier_mice.cli import run_script

    run_script(main)  # an error: one line (--debug: the traceback)
