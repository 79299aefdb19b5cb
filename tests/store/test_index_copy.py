"""Copies of the FAISS index taken in chunks (a snapshot's, a rebuild's) while upserts and removals
land between the chunks end in the same index as a copy taken with the world stopped."""

from __future__ import annotations

import numpy as np
import pytest

from store import index_copy
from store.config import IndexConfig
from store.faiss_index import FaissIndex
from store.index_copy import ChunkedCopy
from store.index_rebuild import Job

DIM = 8


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _ids(a: int, b: int) -> list[str]:
    return [f"i{j}" for j in range(a, b)]


def _contents(index: FaissIndex) -> dict[str, np.ndarray]:
    labels, vectors = index.export()
    return {index._ids.id_of[int(label)]: v for label, v in zip(labels, vectors, strict=True)}


def _churn(index: FaissIndex, round_: int, mirror: dict[str, np.ndarray] | None = None) -> None:
    """Between two chunks: new items, replaced items (copied or not yet) and removals; the same
    changes applied to mirror (item id -> vector) when given."""
    base, old = 1000 + 40 * round_, round_ * 37 % 600
    changes = [(_ids(base, base + 20), _vectors(20, 10 + round_)), (_ids(old, old + 15), _vectors(15, 50 + round_))]
    gone = _ids(round_ * 53 % 600, round_ * 53 % 600 + 10) + _ids(base + 5, base + 8)
    for ids, vectors in changes:
        index.upsert(ids, vectors)
        if mirror is not None:
            mirror.update(zip(ids, vectors, strict=True))
    index.remove(gone)
    for item_id in gone if mirror is not None else []:
        mirror.pop(item_id, None)


@pytest.mark.parametrize("threshold", [10_000, 300])  # flat, IVF
def test_a_chunked_snapshot_copy_equals_a_stop_the_world_copy(tmp_path, threshold: int) -> None:
    cfg = IndexConfig(dim=DIM, exact_threshold=threshold, nprobe=10_000, rebuild_aside=False,
                      copy_chunk_rows=64)
    index = FaissIndex(cfg)
    index.upsert(_ids(0, 600), _vectors(600, 0))
    assert index.mode == ("ivf" if threshold == 300 else "flat")
    copy = index.start_copy()
    rounds = 0
    while not copy.step():  # the serving lock is let go between steps: the index changes
        _churn(index, rounds)
        rounds += 1
    assert rounds >= 8  # 600 labels in chunks of 64: the churn met every part of the copy
    chunked = index.finish_copy(copy, {0: 7})
    world = index.freeze({0: 7})  # the same moment, the world stopped
    size = len(index)
    index.upsert(_ids(0, 50), _vectors(50, 99))  # after both: in neither
    chunked.write(tmp_path / "chunked")  # fills the index off the lock, once
    world.write(tmp_path / "world")
    a, b = (FaissIndex.restore(tmp_path / name, cfg) for name in ("chunked", "world"))
    assert a.offsets == b.offsets == {0: 7} and a.mode == b.mode == index.mode
    assert a._ids.label_of == b._ids.label_of and len(a) == size
    got, stopped = _contents(a), _contents(b)
    assert set(got) == set(stopped) and len(got) == size
    for item_id, vector in stopped.items():
        np.testing.assert_array_equal(got[item_id], vector)
    queries = [_vectors(3, 200 + u) for u in range(6)]
    assert a.search_many(queries, 25) == b.search_many(queries, 25)


def test_an_abandoned_copy_stops_journalling() -> None:
    index = FaissIndex(IndexConfig(dim=DIM, copy_chunk_rows=16))
    index.upsert(_ids(0, 100), _vectors(100, 1))
    copy = index.start_copy()
    copy.step()
    index.abandon_copy(copy)
    index.upsert(_ids(100, 110), _vectors(10, 2))
    assert copy.journal == [] and not copy.done


def test_a_rebuild_copied_in_chunks_while_the_index_changes_equals_the_live_index() -> None:
    jobs: list[Job] = []
    cfg = IndexConfig(dim=DIM, exact_threshold=500, nprobe=10_000, copy_chunk_rows=50, ivf_codes="flat")
    index = FaissIndex(cfg, start_aside=jobs.append)
    mirror = dict(zip(_ids(0, 600), _vectors(600, 3), strict=True))
    index.upsert(_ids(0, 499), np.stack(list(mirror.values())[:499]))
    index.upsert(_ids(499, 600), np.stack(list(mirror.values())[499:]))  # the IVF rebuild is decided
    rounds = 0
    while not jobs:  # each upsert/remove/search copies one more chunk under the caller's lock
        _churn(index, rounds, mirror)
        rounds += 1
    assert rounds >= 3 and index.mode == "flat"  # 12 chunks, 3 calls a round
    _churn(index, rounds, mirror)  # copied, building aside: journalled for the swap
    jobs[0]()
    index.search_many([_vectors(2, 5)], 10)  # swaps in, replaying the rest of the journal
    assert index.mode == "ivf"
    live = _contents(index)
    assert set(live) == set(mirror) and len(index) == len(mirror)
    for item_id, vector in mirror.items():
        np.testing.assert_array_equal(live[item_id], vector)


def test_a_copy_step_reads_the_labels_that_fit_its_time_budget(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(index_copy.time, "perf_counter", lambda: clock[0])
    read: list[int] = []

    def reader(per_label_s: float):
        def read_labels(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            clock[0] += (stop - start) * per_label_s
            read.append(stop - start)
            return np.arange(start, stop), np.zeros((stop - start, DIM), np.float32)
        return read_labels

    copy = ChunkedCopy(reader(1e-5), 5000, DIM, rows=16_384, budget_s=0.002)  # a banded fp16 IVF's cost
    while not copy.step():
        pass
    assert read[0] == index_copy.FIRST_ROWS and all(199 <= n <= 200 for n in read[1:-1])  # 2 ms at 10 us
    labels, _ = copy.copied()
    np.testing.assert_array_equal(labels, np.arange(5000))
    read.clear()
    cheap = ChunkedCopy(reader(1e-9), 5000, DIM, rows=1000, budget_s=0.002)
    while not cheap.step():
        pass
    assert read == [1000] * 5  # cheap labels: at most `rows` a step
