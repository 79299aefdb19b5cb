"""ItemStore: records and offsets, persistence across reopen."""

from __future__ import annotations

import numpy as np

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
