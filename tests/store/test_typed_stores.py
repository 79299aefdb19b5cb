"""UserStateStore and ItemStore: round trips, persistence across reopen, TTL expiry."""

from __future__ import annotations

import numpy as np
import pytest

from store.config import ExpiryConfig
from store.expiry import sortable_time
from store.item_record import ItemRecord
from store.typed_stores import ItemStore, UserStateStore

DAY = 86_400.0


def test_user_store_round_trip(kv_factory, user_state_factory) -> None:
    store = UserStateStore(kv_factory())
    state = user_state_factory("alice")
    store.put(state)
    assert store.get("alice") == state
    assert "alice" in store and "bob" not in store
    assert store.get("bob") is None
    store.delete("alice")
    assert store.get("alice") is None
    assert store.last_seen("alice") is None


def test_user_store_persists_across_reopen(tmp_path, user_state_factory) -> None:
    store = UserStateStore.open(tmp_path / "users")
    states = [user_state_factory(f"u{i}", seed=i) for i in range(5)]
    for s in states:
        store.put(s)
    store.close()
    reopened = UserStateStore.open(tmp_path / "users")
    assert sorted(reopened.user_ids()) == [f"u{i}" for i in range(5)]
    assert reopened.get("u3") == states[3]
    reopened.close()


def test_expiry_drops_only_stale_users(kv_factory, user_state_factory) -> None:
    store = UserStateStore(kv_factory(), ExpiryConfig(ttl_seconds=7 * DAY))
    now = 1.7e9
    ages = {"fresh": 1 * DAY, "edge": 7 * DAY, "old": 8 * DAY, "ancient": 400 * DAY}
    for user, age in ages.items():
        s = user_state_factory(user, n_items=3, n_sessions=1, m=1, dim=4)
        s.last_seen = now - age
        store.put(s)
    assert store.expire(now) == 2
    assert sorted(store.user_ids()) == ["edge", "fresh"]
    assert store.last_seen("old") is None
    assert store.expire(now) == 0


def test_expiry_uses_the_latest_last_seen(kv_factory, user_state_factory) -> None:
    store = UserStateStore(kv_factory(), ExpiryConfig(ttl_seconds=DAY))
    s = user_state_factory("u", n_items=2, n_sessions=1, m=1, dim=2)
    s.last_seen = 0.0
    store.put(s)
    s.last_seen = 10 * DAY  # the user came back: the old index entry must go
    store.put(s)
    assert store.expire(10.5 * DAY) == 0
    assert store.expire(11.5 * DAY) == 1
    assert list(store.kv.iterate()) == []  # no index entries left behind


def test_expiry_is_bounded_per_call(kv_factory, user_state_factory) -> None:
    store = UserStateStore(kv_factory(), ExpiryConfig(ttl_seconds=1.0, max_per_call=3))
    for i in range(7):
        s = user_state_factory(f"u{i}", n_items=1, n_sessions=1, m=0, dim=0)
        s.last_seen = float(i)
        store.put(s)
    assert [store.expire(100.0) for _ in range(4)] == [3, 3, 1, 0]


@pytest.mark.parametrize(
    "a,b", [(-5.0, -1.0), (-1.0, 0.0), (0.0, 1e-9), (1.0, 1.7e9), (-1e300, 1e300)]
)
def test_sortable_time_orders_like_floats(a: float, b: float) -> None:
    assert sortable_time(a) < sortable_time(b)


def test_item_store_records_and_offsets(tmp_path) -> None:
    store = ItemStore.open(tmp_path / "items")
    rec = ItemRecord(
        "n1", "Title", "news", np.ones((4, 8), np.float16), np.ones(8, np.float32), 1.0
    )
    store.put(rec, offsets={0: 11})
    store.put(ItemRecord("n2", vector=np.zeros(8, np.float32)), offsets={1: 4})
    store.delete("n2", offsets={1: 5})
    store.close()
    store = ItemStore.open(tmp_path / "items")
    assert store.get("n1") == rec and "n2" not in store
    assert [r.item_id for r in store.iterate()] == ["n1"]
    assert store.offsets() == {0: 11, 1: 5}
    store.close()
