"""A run of steps through a RowBlock ends with the rows IdMemory.apply_gradients gives one step
at a time: bit for bit, duplicates within a step included, updates and versions too."""

from __future__ import annotations

import numpy as np
import pytest

from store import IdMemory, IdMemoryConfig, MemoryKV, RowBlock


def _memory(ids: list[str]) -> IdMemory:
    mem = IdMemory(MemoryKV(), IdMemoryConfig(dim=6, lr=0.05, ttl_s=0, cache_rows=8))
    mem.observe(ids, 1.0)
    mem.drain_touched()
    mem.version = 3
    return mem


def _steps(seed: int = 0) -> list[tuple[list[str], np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(25):
        ids = [f"r{k}" for k in rng.integers(0, 20, size=int(rng.integers(1, 12)))]  # repeats too
        out.append((ids, rng.normal(scale=3.0, size=(len(ids), 6)).astype(np.float32)))
    return out


def test_block_steps_equal_apply_gradients_one_by_one():
    ids = [f"r{k}" for k in range(20)]
    one, blocked = _memory(ids), _memory(ids)
    block = RowBlock(blocked)
    for step_ids, grads in _steps():
        one.apply_gradients(step_ids, grads)
        block.apply_gradients(step_ids, grads)
        np.testing.assert_array_equal(block.lookup(step_ids), one.lookup(step_ids)[0])
    assert block.commit() == len({i for s, _ in _steps() for i in s})
    for i in ids:
        assert blocked.get_row(i) == one.get_row(i)  # vector, slot, updates, version, last_seen
    assert sorted(blocked.drain_touched()) == sorted(one.drain_touched())


def test_block_over_more_rows_than_the_cache_and_a_missing_id():
    ids = [f"r{k}" for k in range(20)]
    mem = _memory(ids)
    block = RowBlock(mem)
    block.apply_gradients(ids, np.ones((20, 6), np.float32))  # 20 rows, the cache holds 8
    block.commit()
    assert all(mem.get_row(i).updates == 1 for i in ids)
    with pytest.raises(KeyError):
        block.lookup(["nope"])


def test_squares_of_several_uses_grow_the_accumulator_by_their_sum_not_the_sums_square():
    """A batched step passes each entry's summed squares of its uses: the accumulator grows by
    them (duplicates summed too), the vector by the summed gradient over the new accumulator."""
    mem = _memory(["r0", "r1"])
    acc0, v0 = mem.get_row("r0").accum.copy(), mem.get_row("r0").vector.copy()
    block = RowBlock(mem)
    grads = np.full((3, 6), 2.0, np.float32)  # r0: two entries of two uses each (g 1.0 per use)
    block.apply_gradients(["r0", "r1", "r0"], grads, np.full((3, 6), 2.0, np.float32))
    block.commit()
    row = mem.get_row("r0")
    np.testing.assert_allclose(row.accum, acc0 + 4.0)  # not + (2 + 2) ** 2
    np.testing.assert_allclose(row.vector, v0 - 0.05 * 4.0 / (np.sqrt(acc0 + 4.0) + mem.config.eps), rtol=1e-6)
    with pytest.raises(ValueError):
        block.apply_gradients(["r0"], np.ones((1, 6), np.float32), -np.ones((1, 6), np.float32))


def test_a_non_finite_gradient_is_refused_and_changes_nothing():
    mem = _memory(["r0", "r1"])
    before = mem.get_row("r0")
    block = RowBlock(mem)
    with pytest.raises(ValueError):
        block.apply_gradients(["r0", "r1"], np.array([[np.nan] * 6, [0.0] * 6], np.float32))
    assert block.commit() == 0 and mem.get_row("r0") == before


def test_a_block_grown_piecemeal_past_its_first_capacity_keeps_every_row():
    ids = [f"r{k}" for k in range(150)]
    one, blocked = _memory(ids), _memory(ids)
    block = RowBlock(blocked)
    for k in range(0, 150, 7):  # checked out a few at a time, as sampled negatives are
        part = ids[k:k + 7]
        g = np.full((len(part), 6), 0.5 + k, np.float32)
        one.apply_gradients(part, g)
        block.apply_gradients(part, g)
    block.commit()
    assert all(blocked.get_row(i) == one.get_row(i) for i in ids)
