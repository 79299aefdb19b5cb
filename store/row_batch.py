"""Many ID rows as arrays, and served-format records (the `parameters` topic) decoded in one pass.

decode_row costs tens of microseconds of Python per record, and a sync carries tens of thousands.
decode_served checks and reads a whole slice at once: the keys and values are joined into two
buffers and every fixed field (frame, table, id length and bytes, array header) is compared by
numpy for all records together; the CRC32 is checked through its residue (zlib over each whole
record, one C call per record, no slicing); the scalars and vectors are read from joined bytes
and checked for finiteness together. It accepts only what decode_row would decode to exactly that row
(format 2, this table, this dim, the key's id, a matching CRC, finite values); everything else is
left to the caller's per-record decoder, which says why it refuses one (old format-1 records with
slots included). So the fast path need only be right about what it accepts.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .id_row import MAX_ID_BYTES, ROW_MAGIC, SERVED_FORMAT, IdRow, check_table

_U32 = struct.Struct("<I")
_SCALARS = np.dtype([("last_seen", "<f8"), ("updates", "<u8"), ("version", "<u8")])
_SCALARS_AT = 5  # after magic and format
_TEXTS_AT = _SCALARS_AT + _SCALARS.itemsize  # table and id texts follow the scalars
_F32 = 2  # store.binary's dtype code of <f4
_CRC_RESIDUE = 0x2144DF1C  # zlib.crc32(body + its CRC32, little-endian), whatever the body


@dataclass
class RowBatch:
    """Rows of one table, row k: ids[k], stored as raws[k] (its encode_row bytes, either format)."""

    ids: list[str]
    raws: list[bytes]
    vectors: np.ndarray  # (n, dim) float32
    last_seen: np.ndarray  # (n,) float64
    updates: np.ndarray  # (n,) uint64
    versions: np.ndarray  # (n,) uint64
    accum: np.ndarray | None = None  # (n, dim) float32; None: zeros (a served row has no slot)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, positions: Sequence[int]) -> RowBatch:
        """The rows at positions, in that order (copies)."""
        at = np.asarray(positions, np.int64)
        return RowBatch([self.ids[k] for k in at.tolist()], [self.raws[k] for k in at.tolist()],
                        self.vectors[at], self.last_seen[at], self.updates[at], self.versions[at],
                        None if self.accum is None else self.accum[at])

    def set_row(self, k: int, item_id: str, raw: bytes, row: IdRow) -> None:
        """Row k is `row` (decoded one by one from raw), slot included."""
        self.ids[k], self.raws[k] = item_id, raw
        self.vectors[k], self.last_seen[k] = row.vector, row.last_seen
        self.updates[k], self.versions[k] = row.updates, row.version
        if self.accum is None and row.accum.any():
            self.accum = np.zeros_like(self.vectors)
        if self.accum is not None:
            self.accum[k] = row.accum

    def row(self, k: int) -> IdRow:
        """Row k as an IdRow (copies)."""
        accum = np.zeros_like(self.vectors[k]) if self.accum is None else self.accum[k].copy()
        return IdRow(self.vectors[k].copy(), accum, float(self.last_seen[k]), int(self.updates[k]),
                     int(self.versions[k]))


def decode_served(keys: Sequence[bytes | None], values: Sequence[bytes | None], table: str,
                  dim: int) -> tuple[np.ndarray, RowBatch]:
    """(ok (n,) bool, batch of n rows): ok[k] when values[k] is a served-format row of `table`,
    dim `dim`, whose id is the one keys[k] (b"table/id") names; batch row k is that row. The other
    positions hold zeros and empty ids, for the caller's per-record decoder to fill or refuse."""
    n, shape = len(values), _shape(table, dim)
    ks = [b"" if k is None or v is None else bytes(k) for k, v in zip(keys, values, strict=True)]
    vs = [b"" if not k else bytes(v) for k, v in zip(ks, values, strict=True)]  # type: ignore[arg-type]
    id_len = np.fromiter(map(len, ks), np.int64, n) - shape.head_len
    size = np.fromiter(map(len, vs), np.int64, n)
    ok = (id_len > 0) & (id_len <= MAX_ID_BYTES) & (size == shape.id_at + shape.tail + id_len)
    at = np.flatnonzero(ok)
    if len(at):
        at = at[shape.framed([ks[k] for k in at.tolist()], [vs[k] for k in at.tolist()], id_len[at], size[at])]
    ok[:] = False
    ids, raws = [""] * n, [b""] * n
    for k, item_id in zip(at.tolist(), _texts([ks[k][shape.head_len:] for k in at.tolist()]), strict=True):
        if item_id is not None:
            ids[k], raws[k], ok[k] = item_id, vs[k], True
    return _gather(ids, raws, ok, dim)


def _texts(raw: list[bytes]) -> list[str | None]:
    """Each bytes as strict UTF-8 (None where it is not), as decode_row reads an id: each alone
    (joined, a character split between two would pass)."""
    try:
        return [r.decode("utf-8") for r in raw]
    except UnicodeDecodeError:
        return [_text(r) for r in raw]


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


@lru_cache(maxsize=8)
def _shape(table: str, dim: int) -> _Shape:
    return _Shape(check_table(table) + b"/", dim)


class _Shape:
    """Where a served row of one table and dim keeps the bytes decode_served compares, as
    offsets from the record's start (frame, table, id length and id) or end (array header)."""

    def __init__(self, head: bytes, dim: int) -> None:
        self.head, self.head_len = np.frombuffer(head, np.uint8), len(head)
        table_text = _U32.pack(len(head) - 1) + head[:-1]
        array_head = bytes([_F32, 1]) + _U32.pack(dim)
        self.id_at = _TEXTS_AT + len(table_text) + 4  # the id's bytes, after its length
        self.tail = len(array_head) + 4 * dim + 4  # array header, vector, CRC
        fixed = ROW_MAGIC + bytes([SERVED_FORMAT]) + table_text + b"\0" * 4 + array_head
        self.expected = np.frombuffer(fixed, np.uint8)
        self.from_start = np.concatenate([np.arange(5), _TEXTS_AT + np.arange(len(table_text) + 4)])
        self.from_end = -self.tail + np.arange(len(array_head))
        self.length_at = 5 + len(table_text)  # the id length's 4 bytes within `expected`

    def framed(self, ks: list[bytes], vs: list[bytes], id_len: np.ndarray, size: np.ndarray) -> np.ndarray:
        """(m,) bool: record j has the frame, this table, the key's id and its length, this
        array header and a matching CRC32 (of all before it: checked through the residue, the
        CRC of a body followed by its own CRC, so no record is sliced)."""
        row_end = np.cumsum(size)
        row_at = row_end - size
        rows = np.frombuffer(b"".join(vs), np.uint8)
        where = np.concatenate([row_at[:, None] + self.from_start, row_end[:, None] + self.from_end], axis=1)
        expected = np.repeat(self.expected[None], len(vs), axis=0)
        expected[:, self.length_at:self.length_at + 4] = (id_len[:, None] >> np.arange(0, 32, 8)) & 0xFF
        ok = (rows[where] == expected).all(axis=1)
        h, a = self.head_len, self.id_at
        key_heads = np.frombuffer(b"".join([k[:h] for k in ks]), np.uint8).reshape(-1, h)
        ok &= (key_heads == self.head).all(axis=1)
        ok &= np.fromiter(map(zlib.crc32, vs), np.int64, len(vs)) == _CRC_RESIDUE
        ok &= np.fromiter((v[a:a + len(k) - h] == k[h:] for k, v in zip(ks, vs, strict=True)), bool, len(vs))
        return ok


def _gather(ids: list[str], raws: list[bytes], ok: np.ndarray, dim: int) -> tuple[np.ndarray, RowBatch]:
    """The scalars and vectors of the accepted records, each field's bytes joined and read at
    once; a record with a non-finite value is no longer ok (decode_row refuses it, with the
    reason)."""
    n, good = len(raws), np.flatnonzero(ok)
    vectors = np.zeros((n, dim), np.float32)
    scalars = np.zeros(n, _SCALARS)
    if len(good):
        parts = [raws[k] for k in good.tolist()]
        end = _SCALARS_AT + _SCALARS.itemsize
        scalars[good] = np.frombuffer(b"".join([v[_SCALARS_AT:end] for v in parts]), _SCALARS)
        vectors[good] = np.frombuffer(b"".join([v[-4 - 4 * dim:-4] for v in parts]), "<f4").reshape(-1, dim)
        bad = good[~(np.isfinite(vectors[good]).all(axis=1) & np.isfinite(scalars["last_seen"][good]))]
        for k in bad.tolist():
            ok[k], ids[k], raws[k] = False, "", b""
        vectors[bad], scalars[bad] = 0, 0
    return ok, RowBatch(ids, raws, vectors, scalars["last_seen"].copy(), scalars["updates"].copy(),
                        scalars["version"].copy())
