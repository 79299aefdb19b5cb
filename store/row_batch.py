"""Many ID rows as arrays, and served-format records (the `parameters` topic) decoded in one pass.

decode_row costs tens of microseconds of Python per record, and a sync carries tens of thousands.
decode_served checks and reads a whole slice at once: per record only the bytes compares, the
CRC32 and two slices run in Python; the scalars and the vectors are each read by numpy from one
joined buffer and checked for finiteness together. It accepts only what decode_row would decode to exactly that row
(format 2, this table, this dim, the key's id, a matching CRC, finite values); everything else is
left to the caller's per-record decoder, which says why it refuses one (old format-1 records with
slots included). So the fast path need only be right about what it accepts.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .id_row import MAX_ID_BYTES, ROW_MAGIC, SERVED_FORMAT, IdRow, check_table

_U32 = struct.Struct("<I")
_SCALARS = np.dtype([("last_seen", "<f8"), ("updates", "<u8"), ("version", "<u8")])
_SCALARS_AT = 5  # after magic and format
_TEXTS_AT = _SCALARS_AT + _SCALARS.itemsize  # table and id texts follow the scalars
_F32 = 2  # store.binary's dtype code of <f4


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
    n, head = len(values), check_table(table) + b"/"
    table_text = _U32.pack(len(head) - 1) + head[:-1]
    array_head = bytes([_F32, 1]) + _U32.pack(dim)
    tail = len(array_head) + 4 * dim + 4  # array header, vector, CRC
    frame = ROW_MAGIC + bytes([SERVED_FORMAT])
    ids, raws, ok = [""] * n, [b""] * n, np.zeros(n, bool)
    for k, (key, value) in enumerate(zip(keys, values, strict=True)):
        if value is None or key is None:
            continue
        key, value = bytes(key), bytes(value)
        if not key.startswith(head):
            continue
        id_raw = key[len(head):]
        id_len = len(id_raw)
        texts_end = _TEXTS_AT + len(table_text) + 4 + id_len
        if (not 0 < id_len <= MAX_ID_BYTES or len(value) != texts_end + tail
                or not value.startswith(frame)
                or value[_TEXTS_AT:texts_end + len(array_head)] != table_text + _U32.pack(id_len) + id_raw + array_head
                or zlib.crc32(memoryview(value)[:-4]) != _U32.unpack_from(value, len(value) - 4)[0]):
            continue
        try:
            ids[k] = id_raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        raws[k], ok[k] = value, True
    return _gather(ids, raws, ok, dim)


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
