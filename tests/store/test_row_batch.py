"""One-pass decoding of served rows: it accepts exactly the records decode_row reads as that
key's row, with the same values, and leaves every other record to the per-record decoder."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from store.errors import StateCodecError
from store.id_row import IdRow, decode_row, encode_row, row_key
from store.row_batch import decode_served

DIM = 4


def _row(k: int, dim: int = DIM) -> IdRow:
    return IdRow((k + np.arange(dim) / 8).astype(np.float32), np.zeros(dim, np.float32), 10.0 + k, k, 2**60 + k)


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _records() -> list[tuple[bytes | None, bytes | None]]:
    """Good served rows of several id lengths (non-ASCII too) and one record per way to be bad."""
    ids = ["a", "item-12", "Жλ中😀", "x" * 256]
    good = [(row_key("item", i), encode_row("item", i, _row(k), served=True)) for k, i in enumerate(ids)]
    served = good[1][1]
    bad_nan = bytearray(encode_row("item", "n", IdRow(np.zeros(DIM, np.float32), np.zeros(DIM, np.float32)),
                                   served=True))
    at = len(bad_nan) - 4 - 4 * DIM + 4  # the second value of the vector
    bad_nan[at:at + 4] = struct.pack("<f", float("nan"))
    inf_seen = bytearray(served[:-4])
    inf_seen[5:13] = struct.pack("<d", float("inf"))
    flipped = bytearray(served)
    flipped[-9] ^= 1
    old = _row(7)
    old.accum[:] = 1.5
    return [*good,
            (row_key("item", "old"), encode_row("item", "old", old)),  # format 1: the slow path reads it
            (row_key("item", "n"), _recrc(bytes(bad_nan[:-4]))),
            (row_key("item", "item-12"), _recrc(bytes(inf_seen))),
            (row_key("item", "item-12"), bytes(flipped)),  # the CRC does not match
            (row_key("item", "other"), served),  # the key names another id
            (row_key("user", "item-12"), encode_row("user", "item-12", _row(1), served=True)),
            (row_key("item", "d"), encode_row("item", "d", _row(1, dim=DIM + 1), served=True)),
            (row_key("item", "item-12"), served[:-1]), (row_key("item", "item-12"), served + b"\0"),
            (row_key("item", "t"), None), (None, served), (b"item/\xff", served), (b"item/", served)]


def test_decode_served_accepts_exactly_the_served_rows_of_this_table_dim_and_key():
    records = _records()
    ok, batch = decode_served([k for k, _ in records], [v for _, v in records], "item", DIM)
    assert ok.tolist() == [True] * 4 + [False] * (len(records) - 4)
    for k, (key, value) in enumerate(records[:4]):
        table, item_id, row = decode_row(value)
        assert key == row_key(table, item_id) and batch.ids[k] == item_id and batch.raws[k] == value
        assert batch.row(k) == row
    assert not batch.vectors[4:].any() and batch.ids[4:] == [""] * (len(records) - 4)
    for key, value in records[4:]:  # what is refused is refused or read differently one by one
        try:
            table, item_id, row = decode_row(value)
        except (StateCodecError, TypeError):
            continue
        assert value[4] != 2 or key != row_key("item", item_id) or row.vector.shape != (DIM,)


def test_a_batch_takes_rows_and_rows_decoded_one_by_one():
    records = _records()[:5]
    ok, batch = decode_served([k for k, _ in records], [v for _, v in records], "item", DIM)
    assert batch.accum is None and not ok[4]
    table, item_id, row = decode_row(records[4][1])  # format 1, with its slot
    batch.set_row(4, item_id, records[4][1], row)
    assert batch.accum is not None and batch.row(4) == row and batch.row(0).accum.tolist() == [0.0] * DIM
    sub = batch.take([4, 1])
    assert sub.ids == [item_id, batch.ids[1]] and sub.row(0) == row and sub.row(1) == batch.row(1)


@pytest.mark.parametrize("n", [0, 1, 300])
def test_decode_served_of_many_rows(n):
    ids = [f"i{k}" for k in range(n)]
    values = [encode_row("item", i, _row(k), served=True) for k, i in enumerate(ids)]
    ok, batch = decode_served([row_key("item", i) for i in ids], values, "item", DIM)
    assert ok.all() and batch.ids == ids and len(batch) == n
    np.testing.assert_array_equal(batch.versions, [2**60 + k for k in range(n)])
    np.testing.assert_array_equal(batch.vectors, np.array([_row(k).vector for k in range(n)]).reshape(n, DIM))


def _read_as(key: bytes, value: bytes) -> IdRow | None:
    """The row decode_row reads from value when it is a served row of this key's id and DIM."""
    try:
        table, item_id, row = decode_row(value)
    except (StateCodecError, TypeError, ValueError):
        return None
    if value[4] != 2 or key != row_key(table, item_id) or row.vector.shape != (DIM,):
        return None
    if not (np.isfinite(row.vector).all() and np.isfinite(row.last_seen)):
        return None
    return row


def test_every_one_byte_change_is_accepted_only_when_decode_row_reads_that_keys_row():
    """Each byte of a record changed (its CRC made to match again, so every field check is reached),
    in a slice beside good records: accepted exactly when decode_row reads it as the key's row."""
    key, good = row_key("item", "item-12"), encode_row("item", "item-12", _row(3), served=True)
    keys, values = [], []
    for at in range(len(good) - 4):
        for delta in (1, 0x80):
            body = bytearray(good[:-4])
            body[at] ^= delta
            keys.append(key)
            values.append(_recrc(bytes(body)))
    keys += [row_key("item", "a"), key]
    values += [encode_row("item", "a", _row(1), served=True), good]
    ok, batch = decode_served(keys, values, "item", DIM)
    for k, (key_k, value) in enumerate(zip(keys, values, strict=True)):
        row = _read_as(key_k, value)
        assert ok[k] == (row is not None), (k, value)
        if row is not None:
            assert batch.row(k) == row and batch.raws[k] == value


def test_ids_whose_bytes_join_into_utf8_are_still_refused_alone():
    """Two records whose ids are not UTF-8 alone but are once joined (a character split between
    them), each otherwise a good row of its key: both refused, the good one beside them kept."""
    split = "é".encode()
    raw_ids = [b"a" + split[:1], split[1:] + b"b"]
    keys, values = [], []
    for raw in raw_ids:
        good = encode_row("item", "zz", _row(1), served=True)
        at = good.index(b"zz")
        keys.append(b"item/" + raw)
        values.append(_recrc(good[:at] + raw + good[at + 2:-4]))
    keys.append(row_key("item", "zz"))
    values.append(encode_row("item", "zz", _row(1), served=True))
    ok, batch = decode_served(keys, values, "item", DIM)
    assert ok.tolist() == [False, False, True] and batch.ids[2] == "zz"
