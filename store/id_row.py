"""One row of the ID memory and its binary codec (also the value format of the `parameters` topic).

A record names its table and id, so a consumer of the topic needs nothing else to apply it.
Layout (little-endian, framed by store.binary): magic b"TRIR", format u8, last_seen f64,
updates u64, version u64, table, id, then the state and a CRC32. Format 1 (the trainer's table and
snapshots; `parameters` before format 2): f32[2, dim] (vector, accumulator). Format 2 (a served
row, what `parameters` carries): f32[dim], the vector alone; serving never reads the optimizer
slot, and it is half of a format-1 record. decode_row reads both (a served row comes back with a
zero slot). The scalars come first, so a scan for expiry reads last_seen (read_last_seen) without
decoding the rest.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import struct
from dataclasses import dataclass, fields

import numpy as np

from .binary import Reader, Writer, open_frame, values_equal
from .config import IdMemoryConfig
from .errors import StateCodecError

logger = logging.getLogger(__name__)

ROW_MAGIC = b"TRIR"
ROW_FORMAT = 1  # vector and optimizer slot
SERVED_FORMAT = 2  # vector alone (the `parameters` topic)
ROW_FORMATS = frozenset({ROW_FORMAT, SERVED_FORMAT})
MAX_DIM = 4096
MAX_ID_BYTES = 256
_TABLE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")  # no "/": it separates table from id in keys
# the largest valid record: frame, scalars, table and id texts, f32[2, 4096] state, CRC32
MAX_ROW_BYTES = 5 + 24 + (4 + 64) + (4 + MAX_ID_BYTES) + (10 + 2 * 4 * MAX_DIM) + 4
_U64 = 2**64
_VERSION, _VERSION_AT = struct.Struct("<Q"), 21  # after magic, format, last_seen and updates


@dataclass(eq=False)
class IdRow:
    """An ID embedding with its optimizer slot and bookkeeping."""

    vector: np.ndarray  # (dim,) float32
    accum: np.ndarray  # (dim,) float32, Adagrad's running sum of squared gradients
    last_seen: float = 0.0  # event time of the latest occurrence (epoch seconds)
    updates: int = 0  # optimizer steps applied to this row
    version: int = 0  # the trainer's sync version that last wrote the row

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdRow):
            return NotImplemented
        return all(
            values_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    def copy(self) -> IdRow:
        return IdRow(
            self.vector.copy(), self.accum.copy(), self.last_seen, self.updates, self.version
        )


def initial_row(config: IdMemoryConfig, table: str, item_id: str, ts: float = 0.0) -> IdRow:
    """The row an id is admitted with: uniform in [-init_scale, init_scale], a pure function of
    (seed, table, id) through SHAKE-256, so every process (and numpy version) admits the same."""
    material = f"{config.seed}\0".encode() + check_table(table) + b"/" + check_id(item_id)
    bits = np.frombuffer(hashlib.shake_256(material).digest(4 * config.dim), "<u4")
    unit = bits.astype(np.float64) / 2.0**32  # [0, 1)
    vector = ((2.0 * unit - 1.0) * config.init_scale).astype(np.float32)
    accum = np.full(config.dim, config.initial_accumulator, np.float32)
    return IdRow(vector, accum, last_seen=float(ts))


def check_table(table: str) -> bytes:
    """The table name as bytes; 1-64 characters of [A-Za-z0-9_.-]."""
    if not isinstance(table, str) or not _TABLE.match(table):
        raise StateCodecError(f"id row: bad table name {table!r} (1-64 of [A-Za-z0-9_.-])")
    return table.encode("ascii")


def check_id(item_id: str) -> bytes:
    """The id as UTF-8 bytes; 1 to MAX_ID_BYTES of them."""
    if not isinstance(item_id, str):
        raise StateCodecError(f"id row: id must be str, got {type(item_id).__name__}")
    try:
        raw = item_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StateCodecError(f"id row: id {item_id!r} is not valid UTF-8") from exc
    if not 0 < len(raw) <= MAX_ID_BYTES:
        raise StateCodecError(f"id row: id of {len(raw)} bytes (1..{MAX_ID_BYTES})")
    return raw


def row_key(table: str, item_id: str) -> bytes:
    """b"table/id": the row's key on the `parameters` topic (a null value there deletes it)."""
    return check_table(table) + b"/" + check_id(item_id)


def parse_row_key(key: bytes) -> tuple[str, str]:
    """(table, id) of a row_key; raises StateCodecError on anything else."""
    table, sep, raw = bytes(key).partition(b"/")
    try:
        out = table.decode("ascii"), raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateCodecError(f"id row key {key[:80]!r}: not ASCII/UTF-8") from exc
    if not sep:
        raise StateCodecError(f"id row key {key[:80]!r}: no '/' between table and id")
    check_table(out[0])
    check_id(out[1])
    return out


def check_row(row: IdRow, what: str = "id row") -> None:
    """Shapes, dtypes, finiteness and ranges every stored or published row satisfies."""
    v, a = row.vector, row.accum
    if not (isinstance(v, np.ndarray) and isinstance(a, np.ndarray)):
        raise StateCodecError(f"{what}: vector and accum must be numpy arrays")
    if v.ndim != 1 or v.shape != a.shape or not 0 < v.shape[0] <= MAX_DIM:
        raise StateCodecError(
            f"{what}: vector {v.shape} and accum {a.shape} must be equal (dim,), dim 1..{MAX_DIM}"
        )
    if v.dtype != np.float32 or a.dtype != np.float32:
        raise StateCodecError(f"{what}: vector and accum must be float32, not {v.dtype}/{a.dtype}")
    if not (np.isfinite(v).all() and np.isfinite(a).all() and math.isfinite(row.last_seen)):
        raise StateCodecError(f"{what}: non-finite vector, accumulator or last_seen")
    if not (0 <= row.updates < _U64 and 0 <= row.version < _U64):
        raise StateCodecError(f"{what}: updates and version must be in [0, 2**64)")


def encode_row(table: str, item_id: str, row: IdRow, served: bool = False) -> bytes:
    """Encode one row: format ROW_FORMAT (with the slot), or SERVED_FORMAT (served: the vector
    alone); raises StateCodecError if the row is out of bounds."""
    check_table(table)
    check_id(item_id)
    check_row(row)
    w = Writer()
    w.pack("dQQ", float(row.last_seen), int(row.updates), int(row.version))
    w.text(table)
    w.text(item_id)
    w.array(row.vector if served else np.stack([row.vector, row.accum]), "<f4")
    return w.frame(ROW_MAGIC, SERVED_FORMAT if served else ROW_FORMAT)


def decode_row(data: bytes) -> tuple[str, str, IdRow]:
    """(table, id, row) from encode_row's bytes, either format (a served row's slot is zeros);
    StateCodecError on anything invalid."""
    fmt, r = _open(data)
    last_seen, updates, version = r.unpack("dQQ")
    table, item_id = r.text(), r.text()
    # a fresh copy: the row's vector and accum are views of it
    state = r.array("<f4", 2) if fmt == ROW_FORMAT else r.array("<f4", 1)[None]
    r.finish()
    check_table(table)
    check_id(item_id)
    if state.shape[0] != (2 if fmt == ROW_FORMAT else 1) or not 0 < state.shape[1] <= MAX_DIM:
        raise StateCodecError(f"id row: state of shape {state.shape}, expected ({2 if fmt == ROW_FORMAT else 1}, "
                              f"1..{MAX_DIM}) in format {fmt}")
    if not (np.isfinite(state).all() and math.isfinite(last_seen)):
        raise StateCodecError("id row: non-finite vector, accumulator or last_seen")
    accum = state[1] if fmt == ROW_FORMAT else np.zeros_like(state[0])
    return table, item_id, IdRow(state[0], accum, last_seen, updates, version)


def read_last_seen(data: bytes) -> float:
    """last_seen of an encoded row, after the magic, format and CRC checks only (fast)."""
    (last_seen,) = _open(data)[1].unpack("d")
    return last_seen


def read_version(data: bytes) -> int:
    """version of an encoded row from its fixed-offset header (magic and size checked, not the
    CRC: put_batch compares it, and the row itself is checked when it is read)."""
    if bytes(data[:4]) != ROW_MAGIC or len(data) < _VERSION.size + _VERSION_AT:
        raise StateCodecError("id row: not a row record (bad magic or truncated header)")
    return _VERSION.unpack_from(data, _VERSION_AT)[0]


def _open(data: bytes) -> tuple[int, Reader]:
    if isinstance(data, (bytes, bytearray, memoryview)) and len(data) > MAX_ROW_BYTES:
        raise StateCodecError(f"id row: {len(data)} bytes is over the {MAX_ROW_BYTES} limit")
    return open_frame(data, ROW_MAGIC, set(ROW_FORMATS), "id row")
