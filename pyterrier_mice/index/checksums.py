"""Per-chunk CRC-32 checksums of index files: computed while writing, checked in full or lazily."""

from __future__ import annotations

import os
import zlib

import numpy as np

CHUNK_BYTES = 1 << 20


class ChecksumWriter:
    """A binary file writer that records the CRC-32 of every ``chunk_bytes`` chunk it writes."""

    def __init__(self, path: str, chunk_bytes: int = CHUNK_BYTES):
        self.f = open(path, "wb")
        self.chunk_bytes = chunk_bytes
        self.crcs: list[int] = []
        self._crc, self._filled = 0, 0

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(len(view), self.chunk_bytes - self._filled)
            self._crc = zlib.crc32(view[:take], self._crc)
            self._filled += take
            view = view[take:]
            if self._filled == self.chunk_bytes:
                self.crcs.append(self._crc)
                self._crc, self._filled = 0, 0
        self.f.write(data)

    def close(self) -> list[int]:
        if self._filled:
            self.crcs.append(self._crc)
            self._crc, self._filled = 0, 0
        self.f.close()
        return self.crcs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.f.closed:
            self.close()


class ChunkVerifier:
    """Checks the chunks of one file against its recorded checksums, each chunk once. The file is
    mapped when the verifier is made, as the data is: a rebuild that replaces the index folder
    afterwards leaves a reader checking (and reading) the files it opened, never the new ones."""

    def __init__(self, path: str, crcs: list[int], chunk_bytes: int):
        self.path, self.crcs, self.chunk_bytes = path, np.asarray(crcs, dtype=np.uint64), chunk_bytes
        self.checked = np.zeros(len(crcs), dtype=bool)
        self._raw = np.memmap(path, dtype=np.uint8, mode="r") if os.path.getsize(path) else np.zeros(0, np.uint8)

    @property
    def size(self) -> int:
        return len(self._raw)

    def _bytes(self):
        return self._raw

    def bad_chunks(self, first: int = 0, last: int | None = None) -> list[int]:
        """The chunks ``first..last`` (inclusive) whose bytes do not match, checking each chunk once."""
        last = len(self.crcs) - 1 if last is None else last
        bad = []
        for c in range(first, last + 1):
            if self.checked[c]:
                continue
            block = self._bytes()[c * self.chunk_bytes : (c + 1) * self.chunk_bytes]
            if zlib.crc32(block) != int(self.crcs[c]):
                bad.append(c)
            else:
                self.checked[c] = True
        return bad

    def check_range(self, start_byte: int, end_byte: int) -> list[int]:
        if end_byte <= start_byte:
            return []
        return self.bad_chunks(start_byte // self.chunk_bytes, (end_byte - 1) // self.chunk_bytes)
