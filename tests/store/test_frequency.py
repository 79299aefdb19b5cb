"""FrequencyFilter: admission threshold, no under-counting, decay, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from store.config import FrequencyConfig
from store.errors import StateCodecError
from store.frequency import FrequencyFilter


def test_admits_at_min_count() -> None:
    ff = FrequencyFilter(FrequencyConfig(min_count=3))
    assert not ff.admitted("alice")
    assert [ff.observe("alice") for _ in range(3)] == [1, 2, 3]
    assert ff.admitted("alice") and not ff.admitted("bob")
    ff.observe("bob", count=2)
    assert ff.count("bob") == 2 and not ff.admitted("bob")


def test_never_undercounts_and_overcount_is_small_with_collisions() -> None:
    cfg = FrequencyConfig(min_count=5, width=4096, depth=4, decay_every=0)
    ff = FrequencyFilter(cfg)
    rng = np.random.default_rng(0)
    truth: dict[str, int] = {}
    for uid in rng.integers(0, 2000, 5000):
        user = f"user{uid}"
        truth[user] = truth.get(user, 0) + 1
        ff.observe(user)
    over = [ff.count(u) - c for u, c in truth.items()]
    assert min(over) >= 0
    assert np.mean(over) < 0.5  # 5000 events over 4096 columns
    passers_by = [u for u, c in truth.items() if c == 1]
    assert np.mean([ff.admitted(u) for u in passers_by]) < 0.02


def test_decay_halves_counts() -> None:
    ff = FrequencyFilter(FrequencyConfig(min_count=2, decay_every=4))
    for _ in range(3):
        ff.observe("a")
    assert ff.count("a") == 3
    ff.observe("b")  # fourth observation triggers the decay
    assert ff.count("a") == 1 and not ff.admitted("a")


def test_bytes_round_trip_and_reject_mismatch() -> None:
    ff = FrequencyFilter(FrequencyConfig(width=64))
    for u in ["a", "a", "b"]:
        ff.observe(u)
    back = FrequencyFilter.from_bytes(ff.to_bytes(), FrequencyConfig(width=64))
    assert (back.count("a"), back.count("b"), back.observations) == (2, 1, 3)
    with pytest.raises(StateCodecError):
        FrequencyFilter.from_bytes(ff.to_bytes(), FrequencyConfig(width=128))
    with pytest.raises(StateCodecError):
        FrequencyFilter.from_bytes(ff.to_bytes()[:-3], FrequencyConfig(width=64))
