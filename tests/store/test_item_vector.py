"""The item-vectors codec: round trip, the encoder fingerprint, bounds checked on read."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from store import (
    EncoderFingerprint,
    ItemRecord,
    ItemVector,
    StateCodecError,
    VectorBounds,
    decode_item_record,
    decode_item_vector,
    encode_item_record,
    encode_item_vector,
)

FP = EncoderFingerprint(bytes(range(16)), dim=8, codes=4)


def _vector(dim: int = 8, codes: int = 4, fp: EncoderFingerprint = FP, **over) -> ItemVector:
    rng = np.random.default_rng(0)
    fields = dict(item_id="i-1", text="Title. Drama. A body", category="Drama",
                  cpe=rng.standard_normal((codes, dim)).astype(np.float16),
                  vector=rng.standard_normal(dim).astype(np.float32), ts=1.5e9)
    return ItemVector(ItemRecord(**{**fields, **over}), fp)


def _reframe(data: bytes, body: bytes) -> bytes:
    """`body` framed like `data` (same magic, version) with a valid CRC: only the bounds can refuse it."""
    raw = data[:5] + body
    return raw + struct.pack("<I", zlib.crc32(raw))


def test_round_trip_keeps_every_field_and_the_fingerprint() -> None:
    vec = _vector()
    back = decode_item_vector(encode_item_vector(vec))
    assert back.item == vec.item and back.encoder == vec.encoder
    assert back.item.cpe.dtype == np.float16 and back.item.vector.dtype == np.float32
    # the stored record's bytes come out of the frame, equal to encoding the record again
    assert back.record == encode_item_record(vec.item) and vec.record is None
    assert decode_item_record(back.record) == vec.item


def test_fingerprints_differ_by_identity_or_shape() -> None:
    assert EncoderFingerprint(bytes(16), 8, 4) == EncoderFingerprint(bytes(16), 8, 4)
    assert EncoderFingerprint(bytes(16), 8, 4) != EncoderFingerprint(bytes(15) + b"\x01", 8, 4)
    assert EncoderFingerprint(bytes(16), 8, 4) != EncoderFingerprint(bytes(16), 16, 4)
    with pytest.raises(ValueError):
        EncoderFingerprint(b"short", 8, 4)


def test_shapes_must_match_the_fingerprint() -> None:
    wrong = _vector(dim=8, codes=4, fp=EncoderFingerprint(bytes(16), dim=16, codes=4))
    with pytest.raises(StateCodecError, match="do not match"):
        decode_item_vector(encode_item_vector(wrong))


@pytest.mark.parametrize(("vec", "bounds", "match"), [
    (_vector(dim=8), VectorBounds(max_dim=4), "encoder shape"),
    (_vector(codes=4), VectorBounds(max_codes=2), "encoder shape"),
    (_vector(item_id="x" * 300), VectorBounds(), "item_id"),
    (_vector(item_id=""), VectorBounds(), "item_id"),
    (_vector(text="t" * 2000), VectorBounds(text_bytes=1000), "text over"),
    (_vector(ts=float("nan")), VectorBounds(), "non-finite"),
    (_vector(vector=np.full(8, np.inf, np.float32)), VectorBounds(), "non-finite"),
    *((_vector(cpe=np.where(np.eye(4, 8, k) > 0, bad, 0.5).astype(np.float16)), VectorBounds(), "non-finite")
      for k, bad in enumerate((np.nan, np.inf, -np.inf))),  # one bad code value each (fp16: exponent bits)
])
def test_bounds_are_checked_on_read(vec, bounds, match) -> None:
    with pytest.raises(StateCodecError, match=match):
        decode_item_vector(encode_item_vector(vec), bounds)


def test_the_extreme_finite_fp16_values_are_accepted() -> None:
    cpe = np.array([[65504, -65504, 6e-8, -6e-8, 0, -0.0, 1, np.finfo(np.float16).tiny]] * 4, np.float16)
    assert (decode_item_vector(encode_item_vector(_vector(cpe=cpe))).item.cpe == cpe).all()


def test_a_declared_huge_array_is_refused_without_allocating_it() -> None:
    data = encode_item_vector(_vector())
    body = bytearray(data[5:-4])
    at = body.index(struct.pack("<BBII", 1, 2, 4, 8))  # the CPE array: fp16, ndim 2, 4 x 8
    body[at + 2:at + 10] = struct.pack("<II", 2**31, 2**31)  # 2^62 values declared
    with pytest.raises(StateCodecError, match="truncated"):
        decode_item_vector(_reframe(data, bytes(body)))


@pytest.mark.parametrize("damage", ["crc", "truncate", "magic", "version", "item record"])
def test_damaged_or_foreign_bytes_are_refused(damage) -> None:
    data = bytearray(encode_item_vector(_vector()))
    if damage == "crc":
        data[30] ^= 0x01
    elif damage == "truncate":
        data = data[:-10]
    elif damage == "magic":
        data[0:4] = b"XXXX"
    elif damage == "version":
        data[4] = 99
    else:  # a stored item record is not a published vector
        data = bytearray(encode_item_record(_vector().item))
    with pytest.raises(StateCodecError):
        decode_item_vector(bytes(data))
