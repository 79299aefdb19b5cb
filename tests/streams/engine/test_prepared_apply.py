"""A parameters slice worked out off the engine lock (prepare_parameters: decode, gates, the ID
index's plan) applies exactly as one worked out under it, and a plan the index outran is redone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import store.ivf_bounds as ivf_bounds
from store import IdMemoryConfig, IdRow, encode_row, row_key
from streams.engine.config import IdIndexConfig
from streams.engine.parameters import apply_parameters, prepare_parameters
from tests.streams.engine.test_id_half_index import dense_retrieve, random_half

DIM = 8
CFG = IdIndexConfig(exact_threshold=100, nprobe=10_000, reference_sample=10_000)
# a worker's ID memory (streams/worker/id_rows.py: replica_config): versions held, no touched set
WORKER_MEMORY = IdMemoryConfig(dim=DIM, ttl_s=0, versions_held=True, track_touched=False)


def _put(item_id: str, vector: np.ndarray, version: int) -> tuple[bytes, bytes]:
    """A record as the trainer publishes it (the served format: no optimizer slots)."""
    row = IdRow(vector.astype(np.float32), np.zeros(DIM, np.float32), 1.0, 1, version)
    return row_key("item", item_id), encode_row("item", item_id, row, served=True)


def _slices(rng: np.random.Generator, rounds: int = 4) -> list[list[tuple[bytes, bytes]]]:
    """Slices of distinct rows: changed ones (small moves and jumps) and new ones."""
    out = []
    for version in range(1, rounds + 1):
        picked = rng.choice(300, 60, replace=False)
        moved = [_put(f"i{k}", rng.standard_normal(DIM) * (0.05 if j % 2 else 1.0), version)
                 for j, k in enumerate(picked)]
        new = [_put(f"n{version}-{k}", rng.standard_normal(DIM), version) for k in range(10)]
        out.append(moved + new)
    return out


def _lists(half) -> dict[str, tuple[int, bytes]]:
    """Each row's list in the ID index's IVF and its stored vector; every list is the one the
    IVF's own search puts the vector in."""
    index = half.index()
    ivf, label_of = index._master, index._ids.label_of
    out = {}
    for item, label in label_of.items():
        out[item] = (int(ivf.direct_map.get(int(label)) >> 32), ivf.reconstruct(int(label)).tobytes())
    vectors = np.stack([np.frombuffer(v, np.float32) for _, v in out.values()])
    assert [w for w, _ in out.values()] == ivf.quantizer.search(vectors, 1)[1][:, 0].tolist()
    return out


def _under_the_lock(half, records):
    """The whole apply under the lock, as before plans: the index's own upsert and bounds."""
    return apply_parameters(half, records, prepared=replace(prepare_parameters(half, records), rows=None))


def _twins():
    halves = [random_half(300, config=CFG, memory_config=WORKER_MEMORY) for _ in range(2)]
    users = np.random.default_rng(2).standard_normal((3, DIM)).astype(np.float32)
    for half in halves:
        assert half.index().mode == "ivf" and half.index()._bounds is not None
        half.references(users)
    return halves, users


@pytest.fixture
def plan_calls(monkeypatch):
    calls = []
    original = ivf_bounds.ListBounds.plan_move

    def counted(self, *args):
        calls.append(len(args[0]))
        return original(self, *args)
    monkeypatch.setattr(ivf_bounds.ListBounds, "plan_move", counted)
    return calls


def test_prepared_slices_apply_as_slices_prepared_under_the_lock(plan_calls):
    (ahead, inline), users = _twins()
    for records in _slices(np.random.default_rng(3)):
        prepared = prepare_parameters(ahead, records)
        assert prepared.rows is not None and prepared.rows.plan is not None and prepared.versions is not None
        calls = len(plan_calls)
        assert [o.outcome for o in apply_parameters(ahead, records, prepared=prepared)] == ["applied"] * len(records)
        assert len(plan_calls) == calls  # the plan was used, not worked out again
        _under_the_lock(inline, records)
    assert _lists(ahead) == _lists(inline)
    bounds_a, bounds_i = ahead.index()._bounds, inline.index()._bounds
    np.testing.assert_array_equal(bounds_a.lists, bounds_i.lists)
    np.testing.assert_array_equal(bounds_a.lower, bounds_i.lower)
    assert bounds_a.kept == bounds_i.kept > 0
    seen = [set(), {"i1", "n2-3"}, set()]
    assert ahead.retrieve(users, 25, seen) == dense_retrieve(ahead, users, 25, seen)
    np.testing.assert_array_equal(ahead.references(users).numpy(), inline.references(users).numpy())


def test_a_plan_the_index_outran_is_worked_out_again(plan_calls):
    (ahead, inline), users = _twins()
    first, second = _slices(np.random.default_rng(4), rounds=2)
    stale = prepare_parameters(ahead, second)  # planned before the first slice changes the index
    apply_parameters(ahead, first)
    calls = len(plan_calls)
    apply_parameters(ahead, second, prepared=stale)
    assert len(plan_calls) == calls + 1  # planned afresh under the lock
    for records in (first, second):
        _under_the_lock(inline, records)
    assert _lists(ahead) == _lists(inline)
    seen = [set(), set(), {"i5"}]
    assert ahead.retrieve(users, 25, seen) == dense_retrieve(ahead, users, 25, seen)


def test_stale_rows_of_a_prepared_slice_are_left_out():
    (ahead, inline), users = _twins()
    newer = [_put(f"i{k}", np.full(DIM, 0.5), 5) for k in range(20)]
    apply_parameters(ahead, newer), _under_the_lock(inline, newer)
    rng = np.random.default_rng(5)
    mixed = [_put(f"{'n' if k % 5 == 0 else 'i'}{k}", rng.standard_normal(DIM), 3 if k % 2 else 7)
             for k in range(10, 40)]  # held rows, some older than stored, and new ones between
    out = apply_parameters(ahead, mixed, prepared=prepare_parameters(ahead, mixed))
    assert [o.outcome for o in out] == ["stale" if k < 20 and k % 2 and k % 5 else "applied" for k in range(10, 40)]
    _under_the_lock(inline, mixed)
    assert _lists(ahead) == _lists(inline)
    assert ahead.retrieve(users, 25, [set()] * 3) == dense_retrieve(ahead, users, 25, [set()] * 3)


def test_a_prepared_slice_writes_its_rows_ahead_unless_one_is_above_the_ceiling(monkeypatch):
    """The rows' KV write is part of the work done off the lock: the apply under it writes
    nothing. A row above the version ceiling (refused by the apply) keeps the slice's rows from
    being written ahead; the apply then writes the accepted ones itself."""
    (ahead, inline), users = _twins()
    writes = []
    kv_type = type(ahead.memory.kv)
    real = kv_type.write_batch
    monkeypatch.setattr(kv_type, "write_batch",
                        lambda self, *a, **k: (self is ahead.memory.kv and writes.append(1)) or real(self, *a, **k))
    first, second = _slices(np.random.default_rng(6), rounds=2)
    prepared = prepare_parameters(ahead, first)
    assert prepared.versions.written and len(writes) == 1
    apply_parameters(ahead, first, prepared=prepared)
    assert len(writes) == 1  # nothing more under the lock
    _under_the_lock(inline, first)
    second = [*second, _put("far", np.ones(DIM), 3)]  # the rest at version 2
    capped = prepare_parameters(ahead, second, ceiling=2)
    assert not capped.versions.written and len(writes) == 1
    out = apply_parameters(ahead, second, ceiling=2, prepared=capped)
    assert [o.outcome for o in out] == ["applied"] * (len(second) - 1) + ["corrupt"]
    assert len(writes) == 2  # the accepted rows, written under the lock
    _under_the_lock(inline, second[:-1])
    assert _lists(ahead) == _lists(inline)
    assert ahead.retrieve(users, 25, [set()] * 3) == dense_retrieve(ahead, users, 25, [set()] * 3)
