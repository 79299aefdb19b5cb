"""The ID row codec (the parameters topic's value format): round trips and rejected input."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.binary import Writer
from store.errors import StateCodecError
from store.id_row import (
    MAX_DIM,
    MAX_ROW_BYTES,
    ROW_FORMAT,
    ROW_FORMATS,
    ROW_MAGIC,
    SERVED_FORMAT,
    IdRow,
    decode_row,
    encode_row,
    parse_row_key,
    read_last_seen,
    row_key,
)


def a_row(dim: int = 4, seed: int = 0) -> IdRow:
    rng = np.random.default_rng(seed)
    return IdRow(
        rng.standard_normal(dim).astype(np.float32),
        rng.uniform(0.1, 5, dim).astype(np.float32),
        last_seen=1.7e9,
        updates=12,
        version=3,
    )


def hand_framed(table: str, item_id: str, state: np.ndarray) -> bytes:
    """A record with a valid CRC whatever its content: tests that decode checks bounds itself."""
    w = Writer()
    w.pack("dQQ", 1.0, 0, 0)
    w.text(table)
    w.text(item_id)
    w.array(state, "<f4")
    return w.frame(ROW_MAGIC, ROW_FORMAT)


def test_round_trip_keeps_table_id_and_every_field() -> None:
    row = a_row()
    data = encode_row("item", "m/42 é", row)
    table, item_id, back = decode_row(data)
    assert (table, item_id, back) == ("item", "m/42 é", row)
    assert back.vector.dtype == np.float32 and back.accum.dtype == np.float32
    back.vector += 1  # decoded rows are writable, and vector and accum do not alias
    assert np.array_equal(back.accum, row.accum)
    assert read_last_seen(data) == 1.7e9


@settings(max_examples=80, deadline=None)
@given(
    item_id=st.text(min_size=1, max_size=64).filter(lambda s: len(s.encode("utf-8")) <= 256),
    table=st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True),
    dim=st.integers(1, 64),
    seen=st.floats(allow_nan=False, allow_infinity=False),
    counters=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_row_round_trips(item_id, table, dim, seen, counters, seed) -> None:
    row = a_row(dim, seed)
    row.last_seen, (row.updates, row.version) = seen, counters
    assert decode_row(encode_row(table, item_id, row)) == (table, item_id, row)
    assert parse_row_key(row_key(table, item_id)) == (table, item_id)


def test_every_truncation_and_bit_flip_is_rejected() -> None:
    data = encode_row("item", "abc", a_row(3))
    for cut in range(len(data)):
        with pytest.raises(StateCodecError):
            decode_row(data[:cut])
    for pos in range(len(data)):
        for bit in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[pos] ^= bit
            with pytest.raises(StateCodecError):
                decode_row(bytes(flipped))
    with pytest.raises(StateCodecError):
        decode_row(data + b"\0")
    with pytest.raises(StateCodecError):
        decode_row("not bytes")  # type: ignore[arg-type]


def test_oversize_and_malformed_rows_are_rejected_both_ways() -> None:
    big = IdRow(np.zeros(MAX_DIM + 1, np.float32), np.zeros(MAX_DIM + 1, np.float32))
    bad_rows = [
        big,
        IdRow(np.zeros(3, np.float32), np.zeros(4, np.float32)),
        IdRow(np.zeros(0, np.float32), np.zeros(0, np.float32)),
        IdRow(np.zeros(3, np.float64), np.zeros(3, np.float64)),
        IdRow(np.array([0, np.nan, 0], np.float32), np.zeros(3, np.float32)),
        IdRow(np.zeros(3, np.float32), np.zeros(3, np.float32), last_seen=float("inf")),
        IdRow(np.zeros(3, np.float32), np.zeros(3, np.float32), version=-1),
    ]
    for row in bad_rows:
        with pytest.raises(StateCodecError):
            encode_row("item", "a", row)
    for table, item_id in [("item", "x" * 257), ("item", ""), ("a/b", "x"), ("", "x")]:
        with pytest.raises(StateCodecError):
            encode_row(table, item_id, a_row())
    # the same violations in records whose CRC is valid
    fine = np.zeros((2, 3), np.float32)
    for table, item_id, state in [
        ("item", "x" * 257, fine),
        ("a/b", "x", fine),
        ("item", "x", np.zeros((2, MAX_DIM + 1), np.float32)),
        ("item", "x", np.zeros((3, 3), np.float32)),
        ("item", "x", np.full((2, 3), np.inf, np.float32)),
    ]:
        with pytest.raises(StateCodecError):
            decode_row(hand_framed(table, item_id, state))
    assert decode_row(hand_framed("item", "x", fine))[1] == "x"
    with pytest.raises(StateCodecError, match="limit"):
        decode_row(b"\0" * (MAX_ROW_BYTES + 1))


def test_largest_valid_row_fits_the_bound() -> None:
    row = IdRow(np.ones(MAX_DIM, np.float32), np.ones(MAX_DIM, np.float32))
    data = encode_row("t" * 64, "é" * 128, row)
    assert len(data) == MAX_ROW_BYTES
    assert decode_row(data)[2] == row


def test_wrong_magic_or_format_is_rejected() -> None:
    data = bytearray(encode_row("item", "a", a_row()))
    body = bytes(data[:-4])
    other_format = body[:4] + bytes([max(ROW_FORMATS) + 1]) + body[5:]
    with pytest.raises(StateCodecError, match="unknown format"):
        decode_row(other_format + struct.pack("<I", zlib.crc32(other_format)))
    with pytest.raises(StateCodecError, match="magic"):
        decode_row(b"TRIT" + bytes(data[4:]))


def test_a_served_row_carries_the_vector_alone_and_reads_back_with_a_zero_slot() -> None:
    row = a_row(dim=64)
    full, served = encode_row("item", "a", row), encode_row("item", "a", row, served=True)
    assert served[4] == SERVED_FORMAT and full[4] == ROW_FORMAT
    assert len(full) - len(served) == 4 * 64 + 4  # the slot and one shape entry
    table, item_id, back = decode_row(served)
    assert (table, item_id) == ("item", "a") and np.array_equal(back.vector, row.vector)
    assert np.array_equal(back.accum, np.zeros(64, np.float32))
    assert (back.last_seen, back.updates, back.version) == (row.last_seen, row.updates, row.version)
    assert read_last_seen(served) == row.last_seen
    assert decode_row(full)[2] == row  # format 1 still reads, slot and all


def test_a_served_row_with_a_two_row_state_is_refused() -> None:
    w = Writer()
    w.pack("dQQ", 1.0, 0, 0)
    w.text("item")
    w.text("a")
    w.array(np.ones((2, 4), np.float32), "<f4")
    with pytest.raises(StateCodecError, match="expected float32 array of ndim 1"):
        decode_row(w.frame(ROW_MAGIC, SERVED_FORMAT))


def test_row_keys() -> None:
    assert row_key("item", "a/b") == b"item/a/b"
    assert parse_row_key(b"item/a/b") == ("item", "a/b")
    for bad in [b"item", b"item/", b"/a", b"it em/a", b"item/\xff"]:
        with pytest.raises(StateCodecError):
            parse_row_key(bad)
