"""Earlier items as fingerprints (store/seen_items.py): the stated false-positive rate, no false
negatives within the bound, the bound itself, and the codec's checks."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from store.binary import Reader, Writer
from store.errors import StateCodecError
from store.seen_items import EarlierItems, SeenItems, fingerprints


def test_false_positive_rate_is_the_stated_one() -> None:
    held = EarlierItems.of([f"seen-{k}" for k in range(1000)], remember=1000)
    unseen = [f"other-{k}" for k in range(40_000)]
    rate = sum(i in held for i in unseen) / len(unseen)
    assert rate < 0.0095  # len / 2^17 = 0.76%
    assert all(f"seen-{k}" in held for k in range(1000))  # no false negatives
    assert held.holds(fingerprints(unseen[:500] + ["seen-3"])).tolist() == [
        i in held for i in unseen[:500] + ["seen-3"]]


def test_bounded_keeps_the_most_recent_three_quarters_and_never_more() -> None:
    held, exact = EarlierItems(), {}  # exact: the ids kept before issue 26, most recent last
    for k in range(3000):
        dropped = [f"i{k}", f"i{k // 2}"]  # repeats move to their latest sighting
        held = held.added(dropped, remember=1000)
        for i in dropped:
            exact.pop(i, None)
            exact[i] = None
        assert len(held) <= 1000
    order = list(exact)
    assert all(i in held for i in order[-750:])
    # past the bound and the generation it evicts from, only false positives remain
    assert sum(i in held for i in order[:-1250]) < 0.015 * len(order[:-1250])


def test_small_bounds_are_exact_and_latest_sighting_wins() -> None:
    held = EarlierItems.of(["a", "b", "c", "a", "d"], remember=3)  # one fingerprint a generation
    assert [x in held for x in "abcdz"] == [True, False, True, True, False]
    assert len(held) == 3 and len(held.added(["z"], 0)) == 0


def test_added_leaves_the_snapshot_alone() -> None:
    before = EarlierItems.of(["a", "b"])
    seen = SeenItems(frozenset(["k"]), before)
    after = before.added(["c"], 10)
    assert "c" in after and "c" not in seen and before == EarlierItems.of(["a", "b"])
    assert len(seen) == 3 and len(SeenItems(frozenset(["a"]), before)) == 2  # distinct, as ids were
    assert not SeenItems(frozenset(), EarlierItems()) and "k" in seen


def _round_trip(held: EarlierItems) -> bytes:
    w = Writer()
    held.write(w)
    return w.frame(b"TEST", 1)[5:-4]


def test_codec_round_trips_and_refuses_inconsistent_bytes() -> None:
    # CRC-valid forgeries: a state's frame CRC already catches flips and truncation
    held = EarlierItems.of([f"i{k}" for k in range(1000)])
    raw = _round_trip(held)
    assert EarlierItems.read(Reader(raw, "t")) == held
    assert len(raw) < 1000 * 11 / 8 + 40  # ~11 bits a fingerprint
    (count,) = struct.unpack_from("<I", raw, 7)  # bits u8, array header (code, ndim, shape)
    for bad in (raw[:7] + struct.pack("<I", count + 1) + raw[11:],  # count disagrees with bits
                bytes([0]) + raw[1:],  # no fingerprint width
                raw[:-1]):  # short blob
        with pytest.raises(StateCodecError):
            EarlierItems.read(Reader(bad, "t"))


def test_fingerprints_are_stable_across_processes() -> None:
    # stored fingerprints must mean the same item after a restart: no per-process salt (hash())
    want = int.from_bytes(hashlib.blake2b(b"item-1", digest_size=8).digest(), "little")
    assert fingerprints(["item-1"]).tolist() == [want]
    assert fingerprints([]).dtype == np.uint64
