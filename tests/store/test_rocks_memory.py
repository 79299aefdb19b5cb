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


def test_a_point_read_store_reads_back_what_it_wrote_and_reopens_either_way(tmp_path):
    """Uncompressed, mmap-read files: the same values, across flushes, reopened with or without."""
    mem = RocksMemory(memtable_bytes=1 << 20, memtables=2, block_cache_bytes=1 << 20)
    kv = RocksDictKV(tmp_path / "kv", mem, point_reads=True)
    values = {f"k{i}".encode(): bytes([i % 251]) * 600 for i in range(5000)}
    kv.write_batch(values.items())
    kv.flush()
    assert kv.get_many([b"k4999", b"k0", b"none"]) == [values[b"k4999"], values[b"k0"], None]
    kv.close()
    written = max((tmp_path / "kv").glob("OPTIONS-*")).read_text().splitlines()  # the options it ran with
    assert {"allow_mmap_reads=true", "compression=kNoCompression"} <= {line.strip() for line in written}
    for point_reads in (False, True):
        again = RocksDictKV(tmp_path / "kv", mem, point_reads=point_reads)
        assert dict(again.iterate(b"k")) == values
        again.close()
