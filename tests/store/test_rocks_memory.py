"""Every RocksDB database opens within a configured memory budget, and still works."""

from __future__ import annotations

from store import ItemStore, RocksMemory
from store.rocksdict_backend import RocksDictKV


def test_a_store_with_a_small_budget_reads_back_what_it_wrote(tmp_path):
    mem = RocksMemory(memtable_bytes=1 << 20, memtables=2, block_cache_bytes=1 << 20)
    kv = RocksDictKV(tmp_path / "kv", mem)
    for i in range(5000):  # several memtables' worth: flushes happen under the budget
        kv.put(f"k{i}".encode(), bytes(512))
    assert kv.get(b"k4999") == bytes(512)
    kv.close()
    assert RocksDictKV(tmp_path / "kv", mem).get(b"k0") == bytes(512)
    assert ItemStore.open(tmp_path / "items", mem).offsets() == {}
