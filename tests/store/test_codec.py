"""User state and item record codecs: round trips and rejection of bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.binary import Writer
from store.errors import StateCodecError
from store.item_record import ItemRecord, decode_item_record, encode_item_record
from store.seen_items import EarlierItems
from store.user_state import (
    UserState,
    decode_user_state,
    encode_user_state,
    peek_user_state,
    session_content_key,
)


def test_typical_state_round_trips(user_state_factory) -> None:
    state = user_state_factory()
    decoded = decode_user_state(encode_user_state(state))
    assert decoded == state
    assert decoded.session_embeddings.dtype == np.float16
    assert decoded.session_keys.dtype == np.uint64
    decoded.session_embeddings[0, 0] = 1.0  # decoded arrays are writable copies


def test_empty_state_round_trips() -> None:
    state = UserState(user_id="")
    assert decode_user_state(encode_user_state(state)) == state


def test_equality_sees_array_changes(user_state_factory) -> None:
    a, b = user_state_factory(), user_state_factory()
    b.session_embeddings[3, 5] += np.float16(1)
    assert a != b
    b = user_state_factory(n_earlier=3)
    assert a != b and b == user_state_factory(n_earlier=3)


ids = st.lists(st.text(max_size=12), max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    user_id=st.text(max_size=20),
    items=ids,
    g=st.integers(0, 4),
    d=st.integers(0, 16),
    summary=st.text(max_size=50),
    counters=st.tuples(st.integers(0, 2**40), st.integers(0, 2**31), st.integers(-(2**40), 2**40)),
    seen=st.floats(allow_nan=False),
    earlier=ids,
    applied=st.dictionaries(st.integers(0, 2**32 - 1), st.integers(-(2**63), 2**63 - 1), max_size=5),
)
def test_any_state_round_trips(user_id, items, g, d, summary, counters, seen, earlier,
                               applied) -> None:
    rng = np.random.default_rng(len(items))
    n = len(items)
    state = UserState(
        user_id=user_id,
        item_ids=items,
        timestamps=rng.uniform(0, 2e9, n),
        kinds=rng.integers(0, 5, n).astype(np.uint8),
        session_starts=np.sort(rng.integers(0, n + 1, min(g, n + 1))).astype(np.uint32),
        session_keys=rng.integers(0, 2**63, g, dtype=np.uint64),
        session_embeddings=rng.standard_normal((g, d)).astype(np.float16),
        global_embedding=rng.standard_normal(d).astype(np.float16),
        summary=summary,
        total_events=counters[0],
        events_since_summary=counters[1],
        version=counters[2],
        last_seen=seen,
        earlier_items=EarlierItems.of(earlier, remember=len(items) % 7),
        applied=applied,
    )
    data = encode_user_state(state)
    assert decode_user_state(data) == state
    _assert_peek_matches(data)


def _assert_peek_matches(data: bytes) -> None:
    """The header peek gives what a full decode gives for the fields the expiry sweep reads."""
    full, head = decode_user_state(data), peek_user_state(data)
    assert (head.last_seen, head.applied) == (full.last_seen, full.applied)
    assert head.home_partition == (max(full.applied, key=full.applied.get) if full.applied else None)


def test_the_peek_rejects_what_the_decode_rejects_for_its_frame(user_state_factory) -> None:
    data = encode_user_state(user_state_factory(n_items=5, n_sessions=2, dim=8))
    for cut in range(len(data)):
        with pytest.raises(StateCodecError):
            peek_user_state(data[:cut])
    for pos in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        with pytest.raises(StateCodecError):
            peek_user_state(bytes(flipped))


def test_every_truncation_is_rejected(user_state_factory) -> None:
    data = encode_user_state(user_state_factory(n_items=5, n_sessions=2, dim=4, n_earlier=9))
    for cut in range(len(data)):
        with pytest.raises(StateCodecError):
            decode_user_state(data[:cut])


def test_bit_flips_are_rejected(user_state_factory) -> None:
    data = bytearray(encode_user_state(user_state_factory(dim=8, n_earlier=9)))
    rng = np.random.default_rng(1)
    for pos in rng.integers(0, len(data), 200):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(StateCodecError):
            decode_user_state(bytes(flipped))


def test_unknown_version_and_magic_are_rejected(user_state_factory) -> None:
    data = bytearray(encode_user_state(user_state_factory(dim=4)))
    future = bytes(data[:4]) + bytes([99]) + bytes(data[5:])
    with pytest.raises(StateCodecError, match="unknown format version 99"):
        decode_user_state(future)
    with pytest.raises(StateCodecError, match="bad magic"):
        decode_user_state(b"JUNK" + bytes(data[4:]))
    with pytest.raises(StateCodecError, match="bad magic"):
        decode_item_record(bytes(data))  # a user state is not an item record
    with pytest.raises(StateCodecError):
        decode_user_state("not bytes")  # type: ignore[arg-type]


def test_inconsistent_state_is_refused_on_encode() -> None:
    bad = UserState(
        user_id="u", item_ids=["a", "b"], timestamps=np.zeros(1), kinds=np.zeros(2, np.uint8)
    )
    with pytest.raises(StateCodecError, match="history arrays"):
        encode_user_state(bad)
    bad = UserState(user_id="u", session_keys=np.zeros(2, np.uint64))
    with pytest.raises(StateCodecError, match="content key"):
        encode_user_state(bad)
    bad = UserState(user_id="u", earlier_items=["a"])  # type: ignore[arg-type]
    with pytest.raises(StateCodecError, match="EarlierItems"):
        encode_user_state(bad)


def test_session_content_key_tracks_items(user_state_factory) -> None:
    assert session_content_key(["a", "b"]) == session_content_key(["a", "b"])
    assert session_content_key(["a", "b"]) != session_content_key(["a", "b", "c"])
    assert session_content_key(["ab"]) != session_content_key(["a", "b"])
    assert 0 <= session_content_key(["x"]) < 2**64


def test_session_content_key_tracks_item_text() -> None:
    ids, texts = ["a", "b"], [ItemRecord("a", "one").text_key, ItemRecord("b", "two").text_key]
    key = session_content_key(ids, texts)
    assert key == session_content_key(ids, [ItemRecord("a", "one").text_key, texts[1]])
    assert key != session_content_key(ids, [ItemRecord("a", "one!").text_key, texts[1]])
    assert key != session_content_key(ids, [None, texts[1]])  # removed from the catalogue
    assert key != session_content_key(ids)  # the ids-only key of older states misses once
    assert session_content_key(["ab", "c"], [1, 2]) != session_content_key(["a", "bc"], [1, 2])


def test_typical_state_is_compact(user_state_factory) -> None:
    data = encode_user_state(user_state_factory())
    payload = 2 * 384 * (8 + 1) + 60 * (8 + 1) + 8 * (4 + 8)  # no UPE codes: recomputed
    assert len(data) < payload + 60 * 12 + 300  # ids + small headers only


def test_state_at_the_default_bounds_fits_10_kb(user_state_factory) -> None:
    # issue 26: defaults m=32, d=384, g=8, max_history=60, max_seen=1000 (was 43-48 KB)
    state = user_state_factory(n_items=60, n_sessions=8, dim=384, n_earlier=1000)
    assert len(state.earlier_items) >= 995  # all but fingerprint collisions
    assert len(encode_user_state(state)) <= 10_000
    assert len(encode_user_state(user_state_factory(n_items=5, n_sessions=1))) <= 2_000


def test_item_record_round_trips_and_rejects_truncation() -> None:
    rng = np.random.default_rng(0)
    item = ItemRecord(
        item_id="n123",
        text="Title. Body text with ünïcode",
        category="sports",
        cpe=rng.standard_normal((4, 384)).astype(np.float16),
        vector=rng.standard_normal(384).astype(np.float32),
        ts=1.7e9,
    )
    data = encode_item_record(item)
    assert decode_item_record(data) == item
    for cut in (0, 3, 5, 20, len(data) - 1):
        with pytest.raises(StateCodecError):
            decode_item_record(data[:cut])
    assert len(data) < 4 * 384 * 2 + 384 * 4 + 120


def test_crafted_valid_crc_with_wrong_dtype_is_rejected() -> None:
    import zlib

    data = encode_item_record(ItemRecord(item_id="x", vector=np.ones(2, np.float32)))
    body = bytearray(data[:-4])
    pos = body.rfind(struct.pack("<BBI", 2, 1, 2))  # the float32 vector's header
    body[pos] = 1  # claim float16
    forged = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    with pytest.raises(StateCodecError):
        decode_item_record(forged)


# Format 4 (before issue 26: UPE codes stored, earlier items as ids), as the code of that time
# encoded the state `_format_4_example` builds; generated before the change, never regenerated.
FORMAT_4_HEX = (
    "5452555304030000000000000009000000000000000200000000000000000000000092b34005000000752d6f6c64"
    "05000000010000000100000001000000010000000200000061626364c3a903010500000000000000000024400000"
    "0000000034400000000000003e40000000000088b340000000000092b34004010500000002010302040501020000"
    "000000000003000000060102000000a22fe42e6676f44e5aa4974f83b307e901020200000004000000b3bf0ac29e"
    "3c403e513de0b6aaacaab4010104000000793dfa3a792baa3901020200000004000000713dfe3558bcc9acd4b65e"
    "be17c0c2300b0000006c696b6573206472616d610501020000000000000003000000070102000000290000000000"
    "0000070000000000000007000000000000000000000000003e400300000001000000010000000100000078797a68"
    "edb7cb"
)


def _encode_format_4(state: UserState, upe: np.ndarray, earlier: list[str]) -> bytes:
    """The format 4 encoder, kept here to write old states (FORMAT_4_HEX pins it to the old code)."""
    w = Writer()
    w.pack("qQQd", state.version, state.total_events, state.events_since_summary, state.last_seen)
    w.text(state.user_id)
    w.texts(state.item_ids)
    for arr, dtype in ((state.timestamps, "<f8"), (state.kinds, "u1"), (state.session_starts, "<u4"),
                       (state.session_keys, "<u8"), (state.session_embeddings, "<f2"),
                       (state.global_embedding, "<f2"), (upe, "<f2")):
        w.array(arr, dtype)
    w.text(state.summary)
    parts = sorted(state.applied)
    w.array(np.array(parts, np.uint32), "<u4")
    w.array(np.array([state.applied[p] for p in parts], np.int64), "<i8")
    w.pack("Qd", state.summary_events, state.summary_ts)
    w.texts(earlier)
    return w.frame(b"TRUS", 4)


def _format_4_example() -> tuple[UserState, np.ndarray, list[str]]:
    """The state behind FORMAT_4_HEX (without its UPE and earlier ids, returned beside it)."""
    rng = np.random.default_rng(26)
    st = UserState(user_id="u-old", item_ids=["a", "b", "c", "d", "\u00e9"],
                   timestamps=np.array([10.0, 20.0, 30.0, 5000.0, 5010.0]),
                   kinds=np.array([2, 1, 3, 2, 4], np.uint8), session_starts=np.array([0, 3], np.uint32),
                   session_embeddings=rng.standard_normal((2, 4)).astype(np.float16),
                   global_embedding=rng.standard_normal(4).astype(np.float16))
    upe = rng.standard_normal((2, 4)).astype(np.float16)
    st.summary, st.total_events, st.events_since_summary, st.last_seen, st.version = "likes drama", 9, 2, 5010.0, 3
    st.applied, st.summary_events, st.summary_ts = {0: 41, 3: 7}, 7, 30.0
    st.session_keys = np.array([session_content_key(st.session_item_ids(i)) for i in range(2)], np.uint64)
    return st, upe, ["x", "y", "z"]


def test_format_4_states_still_read() -> None:
    state, upe, earlier = _format_4_example()
    old = bytes.fromhex(FORMAT_4_HEX)
    assert _encode_format_4(state, upe, earlier) == old  # the test's encoder is the old code's
    got = decode_user_state(old)
    state.earlier_items = EarlierItems.of(earlier)
    assert got == state  # every field kept; the UPE codes are dropped (recomputed by the engine)
    assert all(i in got.seen_items() for i in ["a", "\u00e9", "x", "y", "z"])
    again = decode_user_state(encode_user_state(got))  # re-written in the current format
    assert again == state and encode_user_state(again)[4] == 5


def test_format_2_states_still_read() -> None:
    import zlib

    state, upe, _ = _format_4_example()
    data = _encode_format_4(state, upe, [])
    body = data[:4] + bytes([2]) + data[5:-4 - 4 - 16]  # format 2: no summary_* / earlier_items
    old = decode_user_state(body + struct.pack("<I", zlib.crc32(body)))
    assert old.summary_events == 7 and old.summary_ts == 0.0  # covered all but the 2 since


def test_format_3_states_still_read_with_no_earlier_items() -> None:
    import zlib

    state, upe, _ = _format_4_example()
    data = _encode_format_4(state, upe, [])
    body = data[:4] + bytes([3]) + data[5:-4 - 4]  # format 3: no earlier_items (an empty list)
    assert decode_user_state(body + struct.pack("<I", zlib.crc32(body))) == state


def test_format_1_states_still_read_and_have_no_home_partition() -> None:
    import zlib

    state, upe, _ = _format_4_example()
    data = _encode_format_4(state, upe, [])
    applied_bytes = (6 + 4 * 2) + (6 + 8 * 2)  # two arrays: header (B, B, u32 shape), values
    body = data[:4] + bytes([1]) + data[5:-4 - 4 - 16 - applied_bytes]  # format 1: no `applied`
    old = decode_user_state(body + struct.pack("<I", zlib.crc32(body)))
    assert old.applied == {} and old.item_ids == state.item_ids and old.summary == "likes drama"
    assert peek_user_state(body + struct.pack("<I", zlib.crc32(body))).home_partition is None


def test_the_peek_equals_a_full_decode_in_every_format(user_state_factory) -> None:
    import zlib

    state, upe, earlier = _format_4_example()
    v4 = _encode_format_4(state, upe, earlier)
    bodies = {4: v4[:-4]}
    plain = _encode_format_4(state, upe, [])
    bodies[3] = plain[:4] + bytes([3]) + plain[5:-4 - 4]
    bodies[2] = plain[:4] + bytes([2]) + plain[5:-4 - 4 - 16]
    bodies[1] = plain[:4] + bytes([1]) + plain[5:-4 - 4 - 16 - 36]
    for fmt, body in sorted(bodies.items()):
        data = body + struct.pack("<I", zlib.crc32(body))
        _assert_peek_matches(data)
        assert peek_user_state(data).home_partition == (None if fmt == 1 else 0)  # {0: 41, 3: 7}
    current = user_state_factory(n_earlier=1000)
    current.applied, current.last_seen = {2: 10, 5: 99, 7: 3}, 1.7e9
    data = encode_user_state(current)
    _assert_peek_matches(data)
    assert data[4] == 5 and peek_user_state(data).home_partition == 5
