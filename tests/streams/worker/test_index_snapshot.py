"""The worker's FAISS index comes back from its snapshot when the snapshot reflects the item
store, and is rebuilt from the store when it does not."""

from __future__ import annotations

import asyncio

import numpy as np

from store import ItemStore
from store.config import IndexConfig
from streams.worker.config import WorkerSettings
from streams.worker.runtime import build_runtime, open_index


def test_snapshot_restores_when_current_and_rebuilds_when_behind(tiny_model, catalogue, tmp_path):
    settings = WorkerSettings(data_dir=tmp_path)
    runtime = build_runtime(settings, tiny_model, "v")
    runtime.engine.upsert_items(catalogue[:20], offsets={0: 20})
    assert asyncio.run(runtime.snapshot_index())
    assert not asyncio.run(runtime.snapshot_index())  # nothing moved since
    query = np.random.default_rng(0).standard_normal((1, tiny_model.dim)).astype(np.float32)
    want = runtime.engine.index.search_many(list(query), 5, [set()])
    _close(runtime)
    local = tmp_path / "local"
    items = ItemStore.open(local / "items")
    index, restored = open_index(IndexConfig(dim=tiny_model.dim, scan_rows=999), items, local / "index")
    assert restored and len(index) == 20 and index.config.scan_rows == 999  # the worker's, not the snapshot's
    assert index.search_many(list(query), 5, [set()]) == want
    items.close()
    # items moved on after the snapshot (say, a kill -9 before the next one): rebuild
    runtime = build_runtime(settings, tiny_model, "v")
    runtime.engine.upsert_items(catalogue[20:25], offsets={0: 25})
    _close(runtime)
    items = ItemStore.open(local / "items")
    index, restored = open_index(IndexConfig(dim=tiny_model.dim), items, local / "index")
    assert not restored and len(index) == 25


def test_the_scan_rows_flag_reaches_the_workers_index(tiny_model, tmp_path):
    runtime = build_runtime(WorkerSettings(data_dir=tmp_path, index_scan_rows=12_000), tiny_model, "v")
    assert runtime.engine.index.config.scan_rows == 12_000
    _close(runtime)


def _close(runtime) -> None:
    runtime.engine.items.close()
    runtime.engine.token_cache.close()
