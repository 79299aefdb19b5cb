"""The FAISS index rebuilds aside: the old index serves while the new one trains, changes made
meanwhile reach the new one, and snapshots are copied first and written later."""

from __future__ import annotations

import numpy as np
import pytest

from store.bruteforce_index import BruteForceIndex
from store.config import IndexConfig
from store.faiss_index import FaissIndex
from store.index_rebuild import Job

DIM = 16
# nprobe above nlist: IVF search is exhaustive, so it must equal the exact oracle
# (fp32 codes: the fp16 default rounds scores; test_faiss_bands.py holds it to an fp16 oracle)
CFG = IndexConfig(dim=DIM, exact_threshold=200, nprobe=10_000, retrain_growth=2.0, ivf_codes="flat")


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _ids(a: int, b: int) -> list[str]:
    return [f"i{j}" for j in range(a, b)]


class Both:
    """The index under test and the exact oracle, changed together."""

    def __init__(self, index: FaissIndex) -> None:
        self.index, self.oracle = index, BruteForceIndex(DIM)

    def upsert(self, ids: list[str], vectors: np.ndarray) -> None:
        for idx in (self.index, self.oracle):
            idx.upsert(ids, vectors)

    def remove(self, ids: list[str]) -> None:
        for idx in (self.index, self.oracle):
            idx.remove(ids)

    def assert_serves_the_oracle(self, seed: int) -> None:
        queries = [_vectors(3, seed + u) for u in range(8)]
        excludes = [set(_ids(0, 5 * u)) for u in range(8)]
        got = self.index.search_many(queries, 20, excludes)
        want = self.oracle.search_many(queries, 20, excludes)
        for g, w in zip(got, want, strict=True):
            assert [h[0] for h in g] == [h[0] for h in w]
            np.testing.assert_allclose([h[1] for h in g], [h[1] for h in w], rtol=1e-5, atol=1e-5)


def _contents(index: FaissIndex) -> dict[str, np.ndarray]:
    """item id -> vector, as the index's master holds them (every label must be live)."""
    labels, vectors = index.export()
    id_of = index._ids.id_of
    assert all(int(label) in id_of for label in labels)  # no dead label survived the replay
    return {id_of[int(label)]: v for label, v in zip(labels, vectors, strict=True)}


def test_the_old_index_serves_during_a_rebuild_and_the_swap_equals_a_fresh_build() -> None:
    jobs: list[Job] = []
    both = Both(FaissIndex(CFG, start_aside=jobs.append))
    both.upsert(_ids(0, 150), _vectors(150, 0))
    both.upsert(_ids(150, 260), _vectors(110, 1))  # past the threshold: the rebuild is decided
    assert len(jobs) == 1 and both.index.mode == "flat"
    # while it has not run: replacements, removals (copied and new items), new items, searches
    both.upsert(_ids(100, 120) + _ids(260, 300), _vectors(60, 2))
    both.remove(_ids(0, 30) + _ids(280, 290))
    both.assert_serves_the_oracle(100)
    assert both.index.mode == "flat"
    jobs[0]()  # the background part: k-means, the copy's vectors, the journal so far
    both.index.finish_rebuild(timeout=0)  # nothing to wait for; swaps in
    assert both.index.mode == "ivf" and both.index._trained_size == 260
    both.assert_serves_the_oracle(200)

    fresh = FaissIndex(IndexConfig(dim=DIM, exact_threshold=200, nprobe=10_000, rebuild_aside=False,
                                   ivf_codes="flat"))
    final = both.oracle
    fresh.upsert(list(final._ids), final._vectors)
    assert fresh.mode == "ivf"
    got, want = _contents(both.index), _contents(fresh)
    assert set(got) == set(want) == set(final._ids)
    for item_id, vector in want.items():
        np.testing.assert_array_equal(got[item_id], vector)
    queries = [_vectors(2, 300 + u) for u in range(10)]
    assert [[h[0] for h in r] for r in both.index.search_many(queries, 30)] == \
        [[h[0] for h in r] for r in fresh.search_many(queries, 30)]


def test_changes_after_the_background_pass_are_replayed_at_the_swap() -> None:
    jobs: list[Job] = []
    both = Both(FaissIndex(CFG, start_aside=jobs.append))
    both.upsert(_ids(0, 250), _vectors(250, 3))
    both.upsert(_ids(0, 10), _vectors(10, 4))  # journalled before the run
    jobs[0]()
    assert both.index.mode == "flat"  # built, not yet swapped: that happens on the engine's thread
    # this call records its change into the journal, then swaps: the tail is replayed
    both.remove(_ids(5, 40))
    assert both.index.mode == "ivf"
    both.upsert(_ids(5, 8), _vectors(3, 5))  # after the swap: straight into the new index
    both.assert_serves_the_oracle(400)
    assert set(_contents(both.index)) == set(both.oracle._ids)


def test_searches_on_the_serving_thread_while_a_thread_trains() -> None:
    both = Both(FaissIndex(CFG))  # the real background thread
    both.upsert(_ids(0, 3000), _vectors(3000, 6))
    for round_ in range(5):  # flat or IVF, whichever serves at this moment, must be exact
        both.upsert(_ids(3000 + round_, 3001 + round_), _vectors(1, 7 + round_))
        both.remove(_ids(round_ * 7, round_ * 7 + 3))
        both.assert_serves_the_oracle(500 + round_)
    both.index.finish_rebuild(timeout=60)
    assert both.index.mode == "ivf"
    both.assert_serves_the_oracle(600)
    assert set(_contents(both.index)) == set(both.oracle._ids)


def test_a_failed_rebuild_keeps_the_old_index_and_retries_after_growth(monkeypatch) -> None:
    jobs: list[Job] = []
    both = Both(FaissIndex(CFG, start_aside=jobs.append))

    def no_memory(vectors: np.ndarray):
        raise MemoryError("k-means")

    monkeypatch.setattr(both.index, "_train_ivf", no_memory)
    both.upsert(_ids(0, 210), _vectors(210, 8))
    jobs[0]()
    both.upsert(_ids(210, 220), _vectors(10, 9))  # swaps: the failure is logged, flat stays
    assert both.index.mode == "flat" and len(jobs) == 1
    both.assert_serves_the_oracle(700)
    monkeypatch.undo()
    both.upsert(_ids(220, 400), _vectors(180, 10))  # below 2 x 220: no retry yet
    assert len(jobs) == 1
    both.upsert(_ids(400, 450), _vectors(50, 11))
    assert len(jobs) == 2
    jobs[1]()
    assert both.index.finish_rebuild() and both.index.mode == "ivf"
    both.assert_serves_the_oracle(800)


@pytest.mark.parametrize("threshold", [10_000, 100])
def test_a_frozen_snapshot_is_what_the_index_held_at_the_freeze(tmp_path, threshold: int) -> None:
    cfg = IndexConfig(dim=DIM, exact_threshold=threshold, nprobe=10_000, rebuild_aside=False)
    index = FaissIndex(cfg)
    index.upsert(_ids(0, 500), _vectors(500, 12))
    before = index.search_many([_vectors(2, 13)], 25)
    frozen = index.freeze({0: 500})
    index.upsert(_ids(0, 100), _vectors(100, 14))  # after the freeze: not in the snapshot
    index.remove(_ids(200, 300))
    frozen.write(tmp_path / "snap")
    restored = FaissIndex.restore(tmp_path / "snap", cfg)
    assert restored.offsets == {0: 500} and len(restored) == 500 and restored.mode == index.mode
    assert restored.search_many([_vectors(2, 13)], 25) == before
    assert index.offsets == {}  # freeze alone records nothing: the caller does after the write
