"""User state and item record codecs: round trips and rejection of bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.errors import StateCodecError
from store.item_record import ItemRecord, decode_item_record, encode_item_record
from store.user_state import UserState, decode_user_state, encode_user_state, session_content_key


def test_typical_state_round_trips(user_state_factory) -> None:
    state = user_state_factory()
    decoded = decode_user_state(encode_user_state(state))
    assert decoded == state
    assert decoded.session_embeddings.dtype == np.float16
    assert decoded.session_keys.dtype == np.uint64
    decoded.upe[0, 0] = 1.0  # decoded arrays are writable copies


def test_empty_state_round_trips() -> None:
    state = UserState(user_id="")
    assert decode_user_state(encode_user_state(state)) == state


def test_equality_sees_array_changes(user_state_factory) -> None:
    a, b = user_state_factory(), user_state_factory()
    b.upe[3, 5] += np.float16(1)
    assert a != b


ids = st.lists(st.text(max_size=12), max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    user_id=st.text(max_size=20),
    items=ids,
    g=st.integers(0, 4),
    d=st.integers(0, 16),
    m=st.integers(0, 4),
    summary=st.text(max_size=50),
    counters=st.tuples(st.integers(0, 2**40), st.integers(0, 2**31), st.integers(-(2**40), 2**40)),
    seen=st.floats(allow_nan=False),
    earlier=ids,
)
def test_any_state_round_trips(user_id, items, g, d, m, summary, counters, seen, earlier) -> None:
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
        upe=rng.standard_normal((m, d)).astype(np.float16),
        summary=summary,
        total_events=counters[0],
        events_since_summary=counters[1],
        version=counters[2],
        last_seen=seen,
        earlier_items=earlier,
    )
    assert decode_user_state(encode_user_state(state)) == state


def test_every_truncation_is_rejected(user_state_factory) -> None:
    data = encode_user_state(user_state_factory(n_items=5, n_sessions=2, m=2, dim=4))
    for cut in range(len(data)):
        with pytest.raises(StateCodecError):
            decode_user_state(data[:cut])


def test_bit_flips_are_rejected(user_state_factory) -> None:
    data = bytearray(encode_user_state(user_state_factory(dim=8, m=2)))
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
    payload = 2 * 384 * (8 + 1 + 32) + 60 * (8 + 1) + 8 * (4 + 8)
    assert len(data) < payload + 60 * 12 + 300  # ids + small headers only


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


def test_format_2_states_still_read(user_state_factory) -> None:
    import zlib

    state = user_state_factory(dim=4)
    state.summary, state.total_events, state.events_since_summary = "likes drama", 9, 2
    state.summary_events, state.summary_ts = 7, 123.0
    data = encode_user_state(state)
    body = data[:4] + bytes([2]) + data[5:-4 - 4 - 16]  # format 2: no summary_* / earlier_items
    old = decode_user_state(body + struct.pack("<I", zlib.crc32(body)))
    assert old.summary_events == 7 and old.summary_ts == 0.0  # covered all but the 2 since
    assert decode_user_state(data) == state


def test_format_3_states_still_read_with_no_earlier_items(user_state_factory) -> None:
    import zlib

    state = user_state_factory(dim=4)
    data = encode_user_state(state)
    body = data[:4] + bytes([3]) + data[5:-4 - 4]  # format 3: no earlier_items (an empty list)
    assert decode_user_state(body + struct.pack("<I", zlib.crc32(body))) == state
    state.earlier_items = ["i9", "i3", "\u00e9t\u00e9"]
    assert decode_user_state(encode_user_state(state)).earlier_items == ["i9", "i3", "\u00e9t\u00e9"]
