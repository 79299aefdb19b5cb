"""The worker gives faust's RocksDB tables its own memory budget instead of faust's defaults."""

from __future__ import annotations

import faust

from streams.kafka.settings import KafkaSettings
from streams.worker.config import WorkerSettings
from streams.worker.topics import declare_tables


def test_faust_tables_get_the_worker_budget_instead_of_faust_defaults(monkeypatch):
    monkeypatch.setenv("THREADREC_ROCKSDB_BLOCK_CACHE_BYTES", str(8 << 20))
    settings = WorkerSettings()
    app = faust.App("mem-test", broker="kafka://127.0.0.1:1", store="rocksdb://")
    tables = declare_tables(app, KafkaSettings().decided(brokers=1), settings.rocks_memory)
    for table in (tables.states, tables.offsets):
        assert table.options["block_cache_size"] == 8 << 20  # faust's default is 2 GiB
        assert table.options["write_buffer_size"] == settings.rocksdb_memtable_bytes
    assert settings.rocks_memory.budget_bytes == 2 * (16 << 20) + (8 << 20)
