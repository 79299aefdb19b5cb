"""The snapshot file of an IdMemory: one file, a trailing SHA-256, written atomically.

Layout (little-endian): magic b"TRIS", format u8, u32 length + a header record (store.binary
frame b"TRSH": table, dim, row count, version, meta, FrequencyFilter bytes), then `rows` times
u32 length + an id_row record, then the SHA-256 of every byte before it. Written to
`<path>.tmp`, fsynced, then renamed over path, so a reader sees the old file or the new one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from durable import atomic_writer

from .binary import Writer, open_frame
from .errors import StateCodecError, StoreError
from .id_row import MAX_ROW_BYTES, check_table, decode_row

logger = logging.getLogger(__name__)

SNAPSHOT_MAGIC, SNAPSHOT_FORMAT = b"TRIS", 1
HEADER_FILE_MAGIC = b"TRIH"  # a header alone: the rows are in a KV checkpoint beside it
_HEADER_MAGIC, _HEADER_FORMAT = b"TRSH", 1
_START = struct.Struct("<4sBI")  # magic, format, header length
_LEN = struct.Struct("<I")
_DIGEST = hashlib.sha256().digest_size
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SnapshotHeader:
    table: str
    dim: int
    rows: int
    version: int
    meta: bytes  # opaque to the store (e.g. the trainer's consumed offsets)
    filter_bytes: bytes  # FrequencyFilter.to_bytes()


def _encode_header(h: SnapshotHeader) -> bytes:
    w = Writer()
    w.text(h.table)
    w.pack("IQQ", h.dim, h.rows, h.version)
    w.array(np.frombuffer(h.meta, np.uint8), "u1")
    w.array(np.frombuffer(h.filter_bytes, np.uint8), "u1")
    return w.frame(_HEADER_MAGIC, _HEADER_FORMAT)


def _decode_header(data: bytes, what: str) -> SnapshotHeader:
    _, r = open_frame(data, _HEADER_MAGIC, {_HEADER_FORMAT}, what)
    table = r.text()
    dim, rows, version = r.unpack("IQQ")
    meta, filter_bytes = r.array("u1", 1).tobytes(), r.array("u1", 1).tobytes()
    r.finish()
    check_table(table)
    return SnapshotHeader(table, dim, rows, version, meta, filter_bytes)


class _HashedFile:
    """Buffered writes that also feed a SHA-256."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.digest = f, hashlib.sha256()
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= _CHUNK:
            self.drain()

    def drain(self) -> None:
        chunk = b"".join(self._parts)
        self.f.write(chunk)
        self.digest.update(chunk)
        self._parts, self._size = [], 0


def write_snapshot(path: Path, header: SnapshotHeader, records: Iterable[bytes]) -> None:
    """Header, then every record (exactly header.rows of them), then the SHA-256; atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = _encode_header(header)
    with atomic_writer(path) as f:
        out = _HashedFile(f)
        out.write(_START.pack(SNAPSHOT_MAGIC, SNAPSHOT_FORMAT, len(head)) + head)
        written = 0
        for raw in records:
            out.write(_LEN.pack(len(raw)))
            out.write(raw)
            written += 1
        if written != header.rows:
            raise StoreError(f"id memory snapshot: {written} rows, header says {header.rows}")
        out.drain()
        f.write(out.digest.digest())
    logger.info("id memory snapshot %s: %d rows of %s", path, header.rows, header.table)


def write_header(path: Path, header: SnapshotHeader) -> None:
    """The header alone (rows in a KV checkpoint beside it), then its SHA-256; atomic."""
    head = _encode_header(header)
    body = _START.pack(HEADER_FILE_MAGIC, SNAPSHOT_FORMAT, len(head)) + head
    with atomic_writer(path) as f:
        f.write(body + hashlib.sha256(body).digest())


def read_header(path: Path, dim: int) -> SnapshotHeader:
    """The header write_header wrote, after checking its checksum, format and dim."""
    what = f"id memory header {path}"
    data = Path(path).read_bytes()
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if len(data) < _START.size + _DIGEST or hashlib.sha256(body).digest() != digest:
        raise StateCodecError(f"{what}: SHA-256 mismatch (corrupt or truncated file)")
    magic, fmt, head_len = _START.unpack(body[:_START.size])
    if magic != HEADER_FILE_MAGIC or fmt != SNAPSHOT_FORMAT or len(body) != _START.size + head_len:
        raise StateCodecError(f"{what}: not a header file of format {SNAPSHOT_FORMAT}")
    header = _decode_header(body[_START.size:], what)
    if header.dim != dim:
        raise StateCodecError(f"{what}: rows have dim {header.dim}, config.dim is {dim}")
    return header


class _Source:
    """Exact reads from the checksummed part of the file; short reads raise StateCodecError."""

    def __init__(self, f: BinaryIO, end: int, what: str) -> None:
        self.f, self.end, self.what = f, end, what

    def take(self, n: int) -> bytes:
        pos = self.f.tell()
        if n > self.end - pos:
            raise StateCodecError(f"{self.what}: truncated at byte {pos} (wanted {n} more)")
        return self.f.read(n)

    def finish(self) -> None:
        if self.f.tell() != self.end:
            raise StateCodecError(f"{self.what}: {self.end - self.f.tell()} unexpected bytes")


def _verify_checksum(f: BinaryIO, what: str) -> int:
    """Size of the checksummed part, after checking the magic and the trailing SHA-256."""
    size = os.fstat(f.fileno()).st_size
    start = f.read(_START.size)
    if len(start) < _START.size or size < _START.size + _DIGEST:
        raise StateCodecError(f"{what}: truncated ({size} bytes)")
    if start[:4] != SNAPSHOT_MAGIC:
        raise StateCodecError(f"{what}: bad magic {start[:4]!r}, expected {SNAPSHOT_MAGIC!r}")
    digest = hashlib.sha256(start)
    left = size - _DIGEST - len(start)
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            raise StateCodecError(f"{what}: file shrank while being read")
        digest.update(chunk)
        left -= len(chunk)
    if f.read(_DIGEST) != digest.digest():
        raise StateCodecError(f"{what}: SHA-256 mismatch (corrupt or truncated file)")
    return size - _DIGEST


@contextmanager
def read_snapshot(
    path: Path, dim: int
) -> Iterator[tuple[SnapshotHeader, Iterator[tuple[str, bytes]]]]:
    """(header, (id, row record) pairs) after checking the checksum, the format and the dim.

    One open file for the check and the read, so a snapshot renamed over path meanwhile is
    never half-read."""
    what = f"id memory snapshot {path}"
    with open(path, "rb") as f:
        end = _verify_checksum(f, what)
        f.seek(0)
        src = _Source(f, end, what)
        _, fmt, head_len = _START.unpack(src.take(_START.size))
        if fmt != SNAPSHOT_FORMAT:
            raise StateCodecError(f"{what}: unknown format {fmt} (known: {SNAPSHOT_FORMAT})")
        header = _decode_header(src.take(head_len), what)
        if header.dim != dim:
            raise StateCodecError(f"{what}: rows have dim {header.dim}, config.dim is {dim}")
        yield header, _records(src, header)


def _records(src: _Source, header: SnapshotHeader) -> Iterator[tuple[str, bytes]]:
    """(id, record) of every row, each decoded and checked against the header's table and dim."""
    for _ in range(header.rows):
        (n,) = _LEN.unpack(src.take(_LEN.size))
        if n > MAX_ROW_BYTES:
            raise StateCodecError(f"{src.what}: a row record of {n} bytes")
        raw = src.take(n)
        table, item_id, row = decode_row(raw)
        if table != header.table or row.vector.shape != (header.dim,):
            raise StateCodecError(
                f"{src.what}: row {table}/{item_id} of dim {row.vector.shape[0]} in a snapshot "
                f"of table {header.table!r}, dim {header.dim}"
            )
        yield item_id, raw
    src.finish()
