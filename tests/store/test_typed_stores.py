"""ItemStore: records and offsets, persistence across reopen."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from store.item_record import ItemRecord
from store.typed_stores import ItemStore


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


def _rec(item_id: str, value: float, d: int = 8) -> ItemRecord:
    return ItemRecord(item_id, f"t{value}", "c", np.full((4, d), value, np.float16),
                      np.full(d, value, np.float32), value)


def test_cached_records_follow_every_put_and_delete(tmp_path) -> None:
    store = ItemStore.open(tmp_path / "items")
    store.put(_rec("a", 1.0))
    assert store.get("a") == _rec("a", 1.0)  # now cached
    store.put(_rec("a", 2.0))
    assert store.get("a") == _rec("a", 2.0)
    store.delete("a")
    assert store.get("a") is None and "a" not in store
    store.close()


def test_put_raw_undoes_a_write_and_the_cache_follows(tmp_path) -> None:
    store = ItemStore.open(tmp_path / "items")
    store.put(_rec("a", 1.0), offsets={0: 3})
    old, absent = store.raw("a"), store.raw("b")
    store.put_many([_rec("a", 2.0), _rec("b", 2.0)])
    assert store.get("a") == _rec("a", 2.0) and "b" in store  # both cached now
    store.put_raw("a", old)
    store.put_raw("b", absent)
    assert store.get("a") == _rec("a", 1.0) and "b" not in store and absent is None
    assert store.offsets() == {0: 3}
    store.close()


def test_put_many_is_one_write_of_the_records_and_offsets(tmp_path) -> None:
    store = ItemStore.open(tmp_path / "items")
    store.put(_rec("a", 1.0), offsets={0: 1})
    assert store.get("a") == _rec("a", 1.0)  # cached
    writes = []
    real = store.kv.write_batch
    store.kv.write_batch = lambda puts, *a, **k: (writes.append(list(puts)), real(puts, *a, **k))
    store.put_many([_rec("a", 2.0), _rec("b", 3.0), _rec("a", 4.0)], offsets={0: 4})
    assert len(writes) == 1 and len(writes[0]) == 4  # three records and the offsets
    assert store.get("a") == _rec("a", 4.0) and store.get("b") == _rec("b", 3.0)  # the last wins
    store.close()
    store = ItemStore.open(tmp_path / "items")
    assert store.offsets() == {0: 4} and store.get("a") == _rec("a", 4.0)
    store.close()


def test_cached_arrays_are_shared_read_only(tmp_path) -> None:
    store = ItemStore.open(tmp_path / "items")
    store.put(_rec("a", 1.0))
    first = store.get("a")
    assert store.get("a") is first  # decoded once
    with pytest.raises(ValueError):
        first.cpe[0, 0] = 9.0
    store.close()


def test_the_record_cache_holds_at_most_its_bytes(tmp_path) -> None:
    one = _rec("x", 1.0, d=256)
    size = one.cpe.nbytes + one.vector.nbytes
    store = ItemStore(ItemStore.open(None).kv, cache_bytes=3 * (size + 300))
    for k in range(10):
        store.put(_rec(f"i{k}", float(k), d=256))
        store.get(f"i{k}")
    assert len(store._cache) == 3 and store._cache.currsize <= store._cache.maxsize
    assert all(store.get(f"i{k}") == _rec(f"i{k}", float(k), d=256) for k in range(10))


def test_a_store_from_before_item_vectors_is_emptied_once(tmp_path) -> None:
    """Its offsets were positions in `items`: read as item-vectors positions they would skip
    vectors, so the records go and the replica re-reads item-vectors from the start."""
    store = ItemStore.open(tmp_path / "items")
    store.put(_rec("old-1", 1.0))
    store.put(_rec("old-2", 2.0))
    store.kv.write_batch([(b"o/offsets", struct.pack("<iq", 0, 2))])  # the old layout's key
    assert store.offsets() == {}  # never taken for item-vectors positions
    assert store.drop_legacy() == 2
    assert list(store.iterate()) == [] and "old-1" not in store
    store.put(_rec("new", 3.0), offsets={0: 1})
    assert store.drop_legacy() == 0 and store.offsets() == {0: 1} and "new" in store
    store.close()
