"""BoundedCache: LRU order, byte bound under churn, stats, persistence across reopen."""

from __future__ import annotations

import numpy as np
import pytest

from store.config import CacheConfig
from store.token_cache import BoundedCache


def _states(t: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((t, d)).astype(np.float16)


def test_round_trip_and_stats(kv_factory) -> None:
    cache = BoundedCache(kv_factory(), CacheConfig(max_bytes=10_000))
    arr = _states(5)
    assert cache.put("s1", arr)
    got = cache.get("s1")
    assert got is not None and got.dtype == np.float16 and np.array_equal(got, arr)
    assert cache.get("nope") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    assert stats.bytes > arr.nbytes


def test_least_recently_used_is_evicted_first(kv_factory) -> None:
    one = BoundedCache.in_memory()
    one.put("x", _states(10))
    entry = one.bytes  # size of one entry with a 1-char key
    cache = BoundedCache(kv_factory(), CacheConfig(max_bytes=3 * entry))
    for key in "abc":
        cache.put(key, _states(10))
    cache.get("a")  # a is now more recent than b
    cache.put("d", _states(10))
    assert "b" not in cache and all(k in cache for k in "acd")
    assert cache.stats().evictions == 1


def test_byte_bound_holds_under_churn(kv_factory) -> None:
    bound = 20_000
    cache = BoundedCache(kv_factory(), CacheConfig(max_bytes=bound))
    rng = np.random.default_rng(0)
    for step in range(600):
        key = f"u{int(rng.integers(0, 80))}/s{int(rng.integers(0, 4))}"
        if rng.random() < 0.4:
            cache.get(key)
        else:
            cache.put(key, _states(int(rng.integers(1, 200)), seed=step))
        assert cache.bytes <= bound
    stored = sum(len(k) + len(v) for k, v in cache.kv.iterate(b"v/"))
    assert stored == cache.bytes  # the accounting matches what is really stored
    assert cache.stats().evictions > 0 and cache.stats().hits > 0


def test_too_large_is_rejected_and_replaces_nothing(kv_factory) -> None:
    cache = BoundedCache(kv_factory(), CacheConfig(max_bytes=500))
    assert cache.put("small", _states(2))
    assert not cache.put("huge", _states(1000))
    assert "small" in cache and "huge" not in cache and cache.stats().rejected == 1


def test_replacing_a_key_updates_bytes(kv_factory) -> None:
    cache = BoundedCache(kv_factory(), CacheConfig(max_bytes=100_000))
    cache.put("k", _states(100))
    cache.put("k", _states(3))
    assert len(cache) == 1 and cache.bytes < 100
    cache.delete("k")
    assert cache.bytes == 0 and cache.get("k") is None


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.uint8])
def test_other_dtypes_round_trip(dtype) -> None:
    cache = BoundedCache.in_memory()
    arr = (np.arange(24).reshape(2, 3, 4)).astype(dtype)
    cache.put("k", arr)
    got = cache.get("k")
    assert got.dtype == arr.dtype and np.array_equal(got, arr)


def test_survives_reopen_with_recency_and_smaller_bound(tmp_path) -> None:
    cache = BoundedCache.open(tmp_path / "cache", CacheConfig(max_bytes=1_000_000))
    for i in range(10):
        cache.put(f"k{i}", _states(20, seed=i))
    cache.get("k0")  # most recent now
    entry = cache.bytes // 10
    cache.close()
    reopened = BoundedCache.open(tmp_path / "cache", CacheConfig(max_bytes=3 * entry + 10))
    assert sorted(k for k in [f"k{i}" for i in range(10)] if k in reopened) == ["k0", "k8", "k9"]
    assert np.array_equal(reopened.get("k0"), _states(20, seed=0))
    assert reopened.bytes <= 3 * entry + 10
    reopened.close()
