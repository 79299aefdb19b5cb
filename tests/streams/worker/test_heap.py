"""The worker returns freed heap to the OS after each batch (glibc malloc_trim)."""

from __future__ import annotations

import os
import platform

import numpy as np

from streams.worker.heap import freeze_startup_objects, release_free_heap


def _rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_freed_heap_goes_back_to_the_os():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert release_free_heap() is False
        return
    # many mid-sized blocks below glibc's mmap threshold: freed, they stay in the heap
    blocks = [np.ones(20_000 + 8 * k, np.float32) for k in range(4_000)]
    del blocks[:-1]  # the last one pins the heap top, as live data does in a worker
    before = _rss_mb()
    assert release_free_heap() is True
    assert _rss_mb() < before - 100


def test_start_up_objects_are_frozen_out_of_full_collections():
    import gc

    class Loaded:  # stands for the model, tokenizer and catalogue a worker holds
        pass

    loaded = [Loaded() for _ in range(10_000)]
    gc.collect()
    assert sum(type(o) is Loaded for o in gc.get_objects(generation=2)) == len(loaded)
    try:
        assert freeze_startup_objects() >= len(loaded)
        gc.collect()  # what a full collection scans no longer holds them
        assert not any(type(o) is Loaded for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
