"""The files of a document-state index, its manifest and its errors. An index directory holds
(arrays memory-mapped): ``pt_meta.json``, ``manifest.json`` (fingerprints, shapes, storage,
counts, CRC-32 per 1 MiB chunk of every file; written last), ``docnos.txt``, ``offsets.npy``
(int64 token offsets), ``texts.npy`` (uint64 hash of each raw text), ``states.bin`` (per-token
states), optional ``extras.bin`` (MICE: each interaction layer's K/V) and ``tokens.bin`` (int32
token ids, for MICE's exact-match options) and ``prior.bin`` (float32 ``[num_docs, dim]``: each
document's embedding by the re-ranker's prior, for a model that has one); a sharded index holds
``shards/<rank>/`` indexes."""

from __future__ import annotations

import hashlib
import json
import os

FORMAT_VERSION = 2
ARTIFACT_TYPE, ARTIFACT_FORMAT = "doc_states", "mice"  # the package's store, whatever the model
MANIFEST = "manifest.json"
DOCNOS, OFFSETS, TEXTS, STATES, EXTRAS = "docnos.txt", "offsets.npy", "texts.npy", "states.bin", "extras.bin"
TOKENS = "tokens.bin"
PRIOR = "prior.bin"
SHARDS = "shards"  # a sharded index: shards/<rank>/ each an index as above; the root manifest lists them


class MiceIndexError(ValueError):
    """A corrupt, incomplete, busy or mismatched document-state index."""


def encode_docnos(docnos: list[str]) -> bytes:
    """``docnos.txt``'s bytes: the docnos one per line (any string without a newline, byte for byte:
    ``\r``, other whitespace and lone surrogates included)."""
    return "\n".join(docnos).encode("utf8", "surrogatepass")


def decode_docnos(data: bytes, n: int) -> list[str]:
    """The ``n`` docnos of ``docnos.txt``'s bytes (split on ``\n`` only, never on ``\r``)."""
    return data.decode("utf8", "surrogatepass").split("\n")[:n] if n else []


def text_hash(text: str) -> int:
    """64-bit hash of a document's raw text (what the index stores to detect changed text)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf8", "surrogatepass"), digest_size=8).digest(), "little")


def permission_denied(path: str, what: str = "the index folder") -> MiceIndexError:
    return MiceIndexError(
        f"{path}: permission denied ({what} is not readable by this user); ask its owner to "
        "make it readable (chmod -R a+rX), or build your own copy"
    )


def manifest_digest(path: str) -> str | None:
    """SHA-256 of an index's manifest file (it records every other file's checksums), or None."""
    try:
        with open(os.path.join(path, MANIFEST), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def read_manifest(path: str) -> dict:
    mpath = os.path.join(path, MANIFEST)
    if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
        raise permission_denied(path)
    if not os.path.exists(mpath):
        building = [
            n
            for n in os.listdir(os.path.dirname(os.path.abspath(path)) or ".")
            if n.startswith(os.path.basename(os.path.normpath(path)) + ".building")
        ]
        hint = " (an interrupted or running build left a '.building' directory beside it)" if building else ""
        raise MiceIndexError(f"{path!r} is not a built document-state index: no {MANIFEST}{hint}")
    try:
        with open(mpath, encoding="utf8") as f:
            manifest = json.load(f)
    except PermissionError:
        raise permission_denied(path, MANIFEST) from None
    except (OSError, ValueError) as e:
        raise MiceIndexError(f"{path}: corrupt document-state index ({MANIFEST}: {e})") from e
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise MiceIndexError(
            f"{path}: index format {version}, this version of pyterrier-mice reads format "
            f"{FORMAT_VERSION}; rebuild the index (indexer(..., overwrite=True))"
        )
    return manifest
