"""The on-disk layout of a document-state index: its files, its manifest, its errors.

An index directory holds (arrays memory-mapped, nothing loaded whole)::

    pt_meta.json     PyTerrier artifact metadata (type ``doc_states``, format ``mice``)
    manifest.json    fingerprints, shapes, storage kind, counts, checksums; written last
    docnos.txt       one docno per line
    offsets.npy      int64 [n+1]: token offsets of each document in the state arrays
    texts.npy        uint64 [n]: hash of each document's raw text (detects changed text
                     without tokenising it)
    states.bin       [total_tokens, *state_shape] per-token document states (see storage)
    extras.bin       optional [total_tokens, *extras_shape] (MICE: each interaction layer's K/V)
    tokens.bin       optional int32 [total_tokens]: each token's id (for models that compare the
                     ids of query and document tokens, MICE's exact-match options)

``manifest["checksums"]`` holds a CRC-32 per ``chunk_bytes`` chunk of every file, so that a
byte changed on disk (same size) is caught before it becomes a score.
"""
from __future__ import annotations

import hashlib
import json
import os

FORMAT_VERSION = 2
ARTIFACT_TYPE, ARTIFACT_FORMAT = "doc_states", "mice"  # the package's store, whatever the model
MANIFEST = "manifest.json"
DOCNOS, OFFSETS, TEXTS, STATES, EXTRAS = "docnos.txt", "offsets.npy", "texts.npy", "states.bin", "extras.bin"
TOKENS = "tokens.bin"
SHARDS = "shards"  # a sharded index: shards/<rank>/ each an index as above; the root manifest lists them


class MiceIndexError(ValueError):
    """A corrupt, incomplete, busy or mismatched document-state index."""


def text_hash(text: str) -> int:
    """64-bit hash of a document's raw text (what the index stores to detect changed text)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf8", "surrogatepass"), digest_size=8).digest(), "little")


def read_manifest(path: str) -> dict:
    mpath = os.path.join(path, MANIFEST)
    if not os.path.exists(mpath):
        building = [n for n in os.listdir(os.path.dirname(os.path.abspath(path)) or ".")
                    if n.startswith(os.path.basename(os.path.normpath(path)) + ".building")]
        hint = " (an interrupted or running build left a '.building' directory beside it)" if building else ""
        raise MiceIndexError(f"{path!r} is not a built document-state index: no {MANIFEST}{hint}")
    try:
        with open(mpath, encoding="utf8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise MiceIndexError(f"{path}: corrupt document-state index ({MANIFEST}: {e})") from e
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise MiceIndexError(f"{path}: index format {version}, this version of pyterrier-mice reads format "
                             f"{FORMAT_VERSION}; rebuild the index (indexer(..., overwrite=True))")
    return manifest
