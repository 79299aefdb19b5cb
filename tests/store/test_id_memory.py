"""IdMemory, the collisionless ID table: exact keys, admission, event-time TTL, Adagrad,
row versions, snapshots, the cache bound; every test runs on the memory and rocksdict backends."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.config import FrequencyConfig, IdMemoryConfig
from store.errors import StateCodecError
from store.held_versions import HeldVersions
from store.id_memory import IdMemory
from store.id_row import IdRow, initial_row, read_version
from store.id_snapshot import read_header, write_header
from store.memory_backend import MemoryKV
from store.rocksdict_backend import RocksDictKV

SMALL_SKETCH = FrequencyConfig(width=4096, depth=4)


def config(**overrides) -> IdMemoryConfig:
    return IdMemoryConfig(**{"dim": 4, "frequency": SMALL_SKETCH, **overrides})


@pytest.fixture
def memory_factory(kv_factory) -> Callable[..., IdMemory]:
    """memory_factory(**config overrides) -> an IdMemory over a fresh store of this backend."""

    def make(**overrides) -> IdMemory:
        return IdMemory(kv_factory(), config(**overrides))

    make.backend = kv_factory.backend  # type: ignore[attr-defined]
    return make


def numbered_row(i: int, dim: int) -> IdRow:
    """A row that says which i it belongs to in every field."""
    vector = (i + np.arange(dim) / 8).astype(np.float32)
    return IdRow(vector, np.full(dim, 2.0 * i, np.float32), float(i), i, i % 7)


_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-: "
    "éüßøЖжλπ中文字日本語한국어😀🚀\u200b\u0301"
)


def random_ids(n: int, seed: int = 0) -> list[str]:
    """n distinct ids: short, sharing a 180-byte prefix, non-ASCII, prefixes of each other."""
    rnd = random.Random(seed)
    shared = "item:" + "x" * 175
    out: dict[str, None] = {}
    while len(out) < n:
        tail = "".join(rnd.choices(_ALPHABET, k=rnd.randint(1, 24)))
        kind = rnd.random()
        item_id = shared + tail if kind < 0.3 else tail
        if kind > 0.9 and out:  # an existing id with a suffix: one id is a prefix of another
            item_id = next(reversed(out)) + tail[:2]
        if len(item_id.encode("utf-8")) <= 256:
            out[item_id] = None
    return list(out)


def check_every_id_reads_back_its_own_row(mem: IdMemory, n: int) -> None:
    ids = random_ids(n)
    assert len({i.encode("utf-8") for i in ids}) == n
    for lo in range(0, n, 10_000):
        chunk = range(lo, min(lo + 10_000, n))
        mem.put_rows([ids[i] for i in chunk], [numbered_row(i, 4) for i in chunk])
    assert len(mem) == n and len(mem._cache) <= mem.config.cache_rows
    order = np.random.default_rng(1).permutation(n)
    vectors, present = mem.lookup([ids[i] for i in order])  # vector i + arange/8 names its i
    assert present.all()
    np.testing.assert_array_equal(vectors, np.stack([numbered_row(i, 4).vector for i in order]))
    for i in order[:10_000]:
        assert mem.get_row(ids[i]) == numbered_row(int(i), 4)
    assert sorted(mem.ids()) == sorted(ids)


@pytest.mark.slow  # 100k rows through RocksDB; the 10k case below runs in the unit loop
def test_every_one_of_100k_ids_reads_back_its_own_row(tmp_path) -> None:
    """The issue's property, with 99% of the rows evicted from the cache into RocksDB."""
    mem = IdMemory(RocksDictKV(tmp_path / "kv"), config(cache_rows=1_000))
    check_every_id_reads_back_its_own_row(mem, 100_000)
    mem.kv.close()


def test_exact_keys_on_every_backend(memory_factory) -> None:
    check_every_id_reads_back_its_own_row(memory_factory(cache_rows=100), 10_000)


def test_admission_after_min_count_and_not_before(memory_factory) -> None:
    mem = memory_factory(min_count=3)
    assert mem.observe(["a", "a"], 10.0).tolist() == [False, False]
    assert not mem.lookup(["a"])[1][0] and len(mem) == 0 and mem.drain_touched() == []
    assert mem.observe(["b", "a", "b", "b"], 11.0).tolist() == [False, True, False, True]
    assert len(mem) == 2 and mem.drain_touched() == ["a", "b"]
    assert mem.occurrences("a") == 3 and mem.occurrences("never") == 0
    assert mem.get_row("a") == initial_row(mem.config, "item", "a", 11.0)
    assert mem.observe(["a"], [5.0]).tolist() == [True]
    assert mem.get_row("a").last_seen == 11.0  # event time only moves forward


def test_initial_rows_depend_only_on_seed_table_and_id() -> None:
    cfg = config(dim=32)
    a = initial_row(cfg, "item", "x").vector
    assert np.array_equal(a, initial_row(cfg, "item", "x").vector)
    assert np.abs(a).max() <= cfg.init_scale and a.std() > cfg.init_scale / 4
    for other in [initial_row(cfg, "item", "y"), initial_row(cfg, "user", "x"),
                  initial_row(config(dim=32, seed=1), "item", "x")]:
        assert not np.array_equal(a, other.vector)
    one, two = IdMemory(MemoryKV(), cfg), IdMemory(MemoryKV(), cfg)
    one.observe(["x", "y"], 1.0)
    two.observe(["y", "x"], 1.0)
    assert one.get_row("x") == two.get_row("x")
    code = (
        "from store.id_row import initial_row; from store.config import IdMemoryConfig;"
        "print(initial_row(IdMemoryConfig(dim=32), 'item', 'x').vector.tobytes().hex())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    here = initial_row(IdMemoryConfig(dim=32), "item", "x").vector
    assert other.stdout.strip() == here.tobytes().hex()


def test_ttl_expires_by_event_time_and_touched_ids_are_drained_once(memory_factory) -> None:
    mem = memory_factory(ttl_s=100.0, cache_rows=1)
    base = 4.0e9  # year 2096: a wall-clock implementation would expire nothing here
    mem.observe(["a", "b", "c"], [base, base + 50, base + 60])
    assert mem.drain_touched() == ["a", "b", "c"]
    mem.apply_gradients(["b"], np.ones((1, 4)))
    mem.observe(["b"], base + 10)  # an older event does not move last_seen back
    assert mem.drain_touched() == ["b"]
    assert mem.expire(base + 99) == []
    assert mem.expire(base + 120) == ["a"]
    assert mem.drain_touched() == ["a"] and mem.drain_touched() == []
    assert mem.expire(base + 155) == ["b"]  # b last seen at base + 50
    assert mem.lookup(["a", "b", "c"])[1].tolist() == [False, False, True]
    assert len(mem) == 1 and mem.ids() == ["c"]
    assert mem.expire(base + 1e6) == ["c"] and len(mem) == 0


def test_ttl_zero_never_expires(memory_factory) -> None:
    mem = memory_factory(ttl_s=0)
    mem.observe(["a"], 0.0)
    assert mem.expire(1e12) == [] and len(mem) == 1


def test_adagrad_matches_a_hand_computed_reference(memory_factory) -> None:
    mem = memory_factory(dim=3, lr=0.1, initial_accumulator=0.1, eps=1e-8)
    v0 = np.array([0.5, -0.25, 0.0], np.float32)
    mem.put_rows(["a", "b"], [IdRow(v0.copy(), np.full(3, 0.1, np.float32)),
                              IdRow(v0.copy(), np.full(3, 0.1, np.float32))])
    g = np.array([[1, 2, -1], [3, 3, 3], [1, 0, 1], [9, 9, 9]], np.float32)
    mem.version = 4
    assert mem.apply_gradients(["a", "b", "a", "absent"], g, ts=[7.0, 1.0, 9.0, 8.0]) == 1
    assert mem.apply_gradients(["a"], np.array([[0.5, -1, 2]]), ts=3.0) == 0
    # by hand: step 1 sums a's two gradients to [2, 2, 0]; step 2 uses [0.5, -1, 2]
    acc = np.array([0.1 + 4, 0.1 + 4, 0.1 + 0])
    v = np.array([0.5, -0.25, 0.0]) - 0.1 * np.array([2, 2, 0]) / (np.sqrt(acc) + 1e-8)
    acc = acc + np.array([0.25, 1, 4])
    v = v - 0.1 * np.array([0.5, -1, 2]) / (np.sqrt(acc) + 1e-8)
    row = mem.get_row("a")
    np.testing.assert_allclose(row.accum, acc, rtol=1e-6)
    np.testing.assert_allclose(row.vector, v, rtol=1e-6)
    assert (row.updates, row.version, row.last_seen) == (2, 4, 9.0)
    assert mem.get_row("b").updates == 1 and mem.ignored_gradients == 1
    assert mem.drain_touched() == ["a", "b"]
    with pytest.raises(ValueError):
        mem.apply_gradients(["a"], np.full((1, 3), np.nan))
    with pytest.raises(ValueError):
        mem.apply_gradients(["a", "b"], np.zeros((1, 3)))
    with pytest.raises(ValueError):
        mem.version = -1


def test_huge_gradients_saturate_the_accumulator_and_rows_stay_storable(memory_factory) -> None:
    mem = memory_factory(cache_rows=1)
    mem.observe(["a"], 0.0)
    with np.errstate(over="raise"):  # the saturation itself raises no floating-point warning
        mem.apply_gradients(["a", "a"], np.full((2, 4), 3e38, np.float32))
    mem.observe(["b"], 0.0)  # evicts and encodes a's row
    row = mem.get_row("a")
    assert np.isfinite(row.vector).all() and (row.accum == np.finfo(np.float32).max).all()


def test_applied_rows_never_go_back_in_version(memory_factory) -> None:
    mem = memory_factory()
    def row(version: int, value: float) -> IdRow:
        return IdRow(np.full(4, value, np.float32), np.ones(4, np.float32), 0.0, 0, version)

    assert mem.put_rows(["a"], [row(5, 1.0)]).tolist() == [True]
    assert mem.put_rows(["a", "a"], [row(3, 2.0), row(5, 3.0)]).tolist() == [False, True]
    assert mem.get_row("a") == row(5, 3.0) and mem.stale_rows_ignored == 1
    assert mem.put_rows(["a"], [row(7, 4.0)]).tolist() == [True]
    assert mem.version == 7 and mem.drain_touched() == ["a"]
    assert mem.delete(["a", "a", "zz"]).tolist() == [True, False, False]
    assert mem.drain_touched() == ["a"] and len(mem) == 0
    assert mem.put_rows(["a"], [row(1, 5.0)]).tolist() == [True]  # nothing stored to be newer
    with pytest.raises(ValueError):
        mem.put_rows(["b"], [IdRow(np.zeros(8, np.float32), np.zeros(8, np.float32))])


def _busy_memory(memory_factory) -> IdMemory:
    mem = memory_factory(min_count=2, cache_rows=5)
    ids = random_ids(60, seed=3)
    rng = np.random.default_rng(0)
    for step in range(4):
        batch = [ids[i] for i in rng.integers(0, 60, 50)]
        mem.observe(batch, 100.0 + step)
        mem.apply_gradients(batch, rng.standard_normal((50, 4)), ts=100.0 + step)
    mem.version, mem.meta = 9, b"offsets:{0: 12}"
    return mem


def test_snapshot_restores_rows_slots_and_filter_counts(memory_factory, tmp_path) -> None:
    mem = _busy_memory(memory_factory)
    path = tmp_path / "snap" / "id.snap"
    mem.snapshot(path)
    assert [p.name for p in path.parent.iterdir()] == ["id.snap"]  # no temporary file left
    target = RocksDictKV(tmp_path / "restored") if memory_factory.backend == "rocksdict" \
        else MemoryKV()
    stale = IdMemory(target, mem.config)
    stale.put_rows(["not-in-snapshot"], [numbered_row(1, 4)])
    stale.flush()
    back = IdMemory.restore(path, target, mem.config)
    assert back.ids() == mem.ids() and len(back) == len(mem) > 10
    assert all(back.get_row(i) == mem.get_row(i) for i in mem.ids())
    assert (back.version, back.meta, back.table) == (9, b"offsets:{0: 12}", "item")
    probes = random_ids(60, seed=3) + ["unseen"]
    assert [back.occurrences(i) for i in probes] == [mem.occurrences(i) for i in probes]
    assert back._filter.observations == mem._filter.observations
    target.close()


def test_snapshot_rejects_flipped_bytes_truncation_and_wrong_config(
    memory_factory, tmp_path
) -> None:
    mem = _busy_memory(memory_factory)
    path = tmp_path / "id.snap"
    mem.snapshot(path)
    data = path.read_bytes()
    bad = tmp_path / "bad.snap"
    for pos in [0, 7, 40, len(data) // 2, len(data) - 40, len(data) - 1]:
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        bad.write_bytes(bytes(flipped))
        with pytest.raises(StateCodecError):
            IdMemory.restore(bad, MemoryKV(), mem.config)
    for cut in [0, 10, len(data) - 33, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(StateCodecError):
            IdMemory.restore(bad, MemoryKV(), mem.config)
    with pytest.raises(StateCodecError, match="dim 4, config.dim is 8"):
        IdMemory.restore(path, MemoryKV(), config(dim=8))
    with pytest.raises(StateCodecError, match="frequency filter"):
        IdMemory.restore(path, MemoryKV(), config(frequency=FrequencyConfig(width=128)))


def test_cache_never_exceeds_cache_rows(memory_factory) -> None:
    mem = memory_factory(cache_rows=7, ttl_s=50.0)
    ids = random_ids(200, seed=5)
    rng = np.random.default_rng(2)
    ops = ["observe", "lookup", "grad", "put", "delete", "expire"]
    for step in range(60):
        batch = [ids[i] for i in rng.integers(0, 200, 25)]
        _run(mem, ops[step % len(ops)], batch if step % 6 != 4 else batch[:2], step)
        assert len(mem._cache) <= 7 and len(mem._pending) <= 7
    assert len(mem) == len(mem.ids())


def test_rows_survive_flush_close_and_reopen(tmp_path) -> None:
    cfg = config(cache_rows=10)
    mem = IdMemory(RocksDictKV(tmp_path / "kv"), cfg)
    ids = random_ids(500, seed=7)
    mem.put_rows(ids, [numbered_row(i, 4) for i in range(500)])
    mem.flush()
    mem.kv.close()
    again = IdMemory(RocksDictKV(tmp_path / "kv"), cfg)
    assert len(again) == 500
    assert all(again.get_row(i) == numbered_row(n, 4) for n, i in enumerate(ids))
    again.observe(["fresh"], 1.0)
    again.close()  # close() flushes the dirty row first
    kv = RocksDictKV(tmp_path / "kv")
    assert IdMemory(kv, cfg).get_row("fresh") is not None
    kv.close()


def test_a_store_written_with_another_dim_is_refused_on_read(tmp_path) -> None:
    kv = RocksDictKV(tmp_path / "kv")
    first = IdMemory(kv, config(dim=4))
    first.put_rows(["a"], [numbered_row(1, 4)])
    first.flush()
    wider = IdMemory(kv, config(dim=8))
    assert "a" in wider and len(wider) == 1
    with pytest.raises(StateCodecError, match="config.dim is 8"):
        wider.lookup(["a"])
    kv.close()


def test_large_snapshot_round_trips_in_batches(tmp_path) -> None:
    mem = IdMemory(MemoryKV(), config(cache_rows=100))
    ids = random_ids(5_000, seed=11)
    mem.put_rows(ids, [numbered_row(i, 4) for i in range(5_000)])
    mem.snapshot(tmp_path / "s")
    mem.snapshot(tmp_path / "s")  # over an existing snapshot
    back = IdMemory.restore(tmp_path / "s", MemoryKV(), mem.config)
    assert len(back) == 5_000
    assert all(back.get_row(i) == numbered_row(n, 4) for n, i in enumerate(ids))


def test_bad_ids_and_configs_are_rejected(memory_factory) -> None:
    mem = memory_factory()
    for bad in ["", "x" * 257, "\ud800"]:
        with pytest.raises(ValueError):
            mem.observe([bad], 1.0)
    with pytest.raises(ValueError):
        IdMemory(MemoryKV(), config(), table="a/b")
    with pytest.raises(ValueError):
        IdMemory(MemoryKV(), config(dim=5000))
    with pytest.raises(ValueError):
        mem.observe(["a", "b"], [1.0])
    with pytest.raises(ValueError):
        mem.put_rows(["a", "b"], [numbered_row(1, 4)])


def test_tables_in_one_store_stay_apart() -> None:
    kv = MemoryKV()
    items, users = IdMemory(kv, config()), IdMemory(kv, config(), table="item.v2")
    items.observe(["a"], 1.0)
    users.observe(["a", "b"], 1.0)
    items.flush()
    users.flush()
    assert (items.ids(), users.ids()) == (["a"], ["a", "b"])
    assert items.get_row("a") != users.get_row("a")


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["observe", "grad", "put", "delete", "expire", "lookup"]),
        st.lists(st.integers(0, 11), min_size=1, max_size=6),
        st.integers(0, 40),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_a_tiny_cache_behaves_like_an_unbounded_one(ops) -> None:
    """Eviction, write-back and re-reads must be invisible: cache_rows 2 vs 1000; and the versions
    held in memory must be the rows' (checked through a put of every row at a middle version)."""
    names = ["a", "ab", "b", "é", "日本", "x" * 256, "a/b", "7", "8", "9", "10", "11"]
    small = IdMemory(MemoryKV(), config(cache_rows=2, min_count=2, ttl_s=10.0))
    large = IdMemory(MemoryKV(), config(cache_rows=1000, min_count=2, ttl_s=10.0))
    held = IdMemory(MemoryKV(), config(cache_rows=2, min_count=2, ttl_s=10.0, versions_held=True))
    for op, picks, n in ops:
        ids = [names[p] for p in picks]
        outs = [_run(m, op, ids, n) for m in (small, large, held)]
        assert _same(*outs[:2]) and _same(*outs[1:]), (op, ids, n)
        assert len(small._cache) <= 2
    assert small.drain_touched() == large.drain_touched() == held.drain_touched()
    assert small.ids() == large.ids() == held.ids() and len(small) == len(large) == len(held) == len(small.ids())
    assert all(small.get_row(i) == large.get_row(i) == held.get_row(i) for i in names)
    assert dict(held._versions.items()) == {i: held.get_row(i).version for i in held.ids()}


def _run(mem: IdMemory, op: str, ids: list[str], n: int) -> object:
    if op == "observe":
        return mem.observe(ids, float(n))
    if op == "grad":
        mem.version = n % 7  # a step stamps the current version: later puts may be stale
        grads = np.arange(len(ids) * 4, dtype=np.float32).reshape(-1, 4) - n
        return mem.apply_gradients(ids, grads, ts=float(n))
    if op == "put":
        return mem.put_rows(ids, [numbered_row(n, 4)] * len(ids))
    if op == "delete":
        return mem.delete(ids)
    if op == "expire":
        return mem.expire(float(n))
    return mem.lookup(ids)


def _same(a: object, b: object) -> bool:
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("versions_held", [False, True])
def test_put_batch_stores_what_put_rows_stores_held_or_not(memory_factory, versions_held) -> None:
    """Rows held decoded (cached or waiting to be written) and rows only in the KV take a batch
    alike: stale ones ignored, the rest stored, counted and reported as put_rows does."""
    from store.id_row import encode_row, row_key
    from store.row_batch import decode_served

    def batch(rows: dict[str, IdRow]):
        ids = list(rows)
        return decode_served([row_key("item", i) for i in ids],
                             [encode_row("item", i, r, served=True) for i, r in rows.items()], "item", 4)[1]

    def row(version: int, value: float) -> IdRow:
        return IdRow(np.full(4, value, np.float32), np.zeros(4, np.float32), 1.0, 2, version)

    mem, ref = memory_factory(cache_rows=3, versions_held=versions_held), IdMemory(MemoryKV(), config(cache_rows=3))
    ids = [f"r{k}" for k in range(8)]
    for m in (mem, ref):
        m.put_rows(ids, [row(5, float(k)) for k in range(8)])  # some cached, some pending, some in the KV
        m.drain_touched()
    new = {ids[0]: row(4, 9.0), ids[1]: row(5, 9.0), ids[6]: row(6, 9.0), ids[7]: row(2, 9.0),
           "fresh": row(3, 9.0)}
    applied, created = mem.put_batch(batch(new))
    assert applied.tolist() == [False, True, True, False, True] and created.tolist() == [False] * 4 + [True]
    assert ref.put_rows(list(new), list(new.values())).tolist() == [False, True, True, False, True]
    assert mem.stale_rows_ignored == ref.stale_rows_ignored == 2 and len(mem) == len(ref) == 9
    assert mem.version == 6 and mem.drain_touched() == [ids[1], ids[6], "fresh"]
    for m in (mem, ref):
        m.flush()
    for item_id in [*ids, "fresh"]:
        assert mem.get_row(item_id) == ref.get_row(item_id), item_id
    with pytest.raises(ValueError, match="distinct"):
        mem.put_batch(batch({"a": row(1, 1.0)}).take([0, 0]))


def test_versions_read_ahead_hold_until_a_version_changes(monkeypatch) -> None:
    """put_batch takes the versions read ahead of it (a worker reads them off the engine lock)
    while no version changed since; a row put or deleted between makes it read them again."""
    from store.id_row import encode_row, row_key
    from store.row_batch import decode_served

    def batch(rows: dict[str, int]):
        rows = {i: IdRow(np.full(4, 1.0, np.float32), np.zeros(4, np.float32), 1.0, 1, v) for i, v in rows.items()}
        return decode_served([row_key("item", i) for i in rows],
                             [encode_row("item", i, r, served=True) for i, r in rows.items()], "item", 4)[1]

    mem = IdMemory(MemoryKV(), config(versions_held=True, track_touched=False))
    mem.put_rows(["a"], [IdRow(np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0, 1, 5)])
    reads = []
    real = HeldVersions.slots
    monkeypatch.setattr(HeldVersions, "slots", lambda self, ids: reads.append(ids) or real(self, ids))
    first = batch({"a": 6, "b": 2})
    ahead = mem.versions_ahead(first.ids)
    assert len(reads) == 1
    assert mem.put_batch(first, ahead)[0].tolist() == [True, True] and len(reads) == 1  # taken as read
    second = batch({"b": 1, "c": 3})
    stale = mem.versions_ahead(second.ids)  # c absent, b at 2
    mem.put_rows(["c"], [IdRow(np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0, 1, 9)])
    applied, created = mem.put_batch(second, stale)
    assert applied.tolist() == [False, False] and created.tolist() == [False, False]  # read again: c is at 9
    assert mem.get_row("c").version == 9 and len(reads) == 3
    assert IdMemory(MemoryKV(), config()).versions_ahead(["a"]) is None  # versions not held: nothing to read ahead


def test_a_header_over_a_checkpoint_restores_what_a_snapshot_does(tmp_path) -> None:
    kv = RocksDictKV(tmp_path / "live")
    mem = _busy_memory(lambda **overrides: IdMemory(kv, config(**overrides)))  # a small cache: rows dirty
    ids, rng = random_ids(60, seed=3), np.random.default_rng(1)
    header = mem.header()  # writes the dirty rows back first
    header_observations = mem._filter.observations
    kv.checkpoint(tmp_path / "ck")
    write_header(tmp_path / "table.bin", header)
    mem.apply_gradients(ids[:5], rng.standard_normal((5, 4)), ts=200.0)  # after the checkpoint
    mem.put_rows(["late"], [numbered_row(1, 4)])
    expected_ids = sorted(set(mem.ids()) - {"late"})
    copy = RocksDictKV.from_checkpoint(tmp_path / "ck", tmp_path / "copy")
    back = IdMemory.reopen(copy, read_header(tmp_path / "table.bin", 4), mem.config)
    assert sorted(back.ids()) == expected_ids and len(back) == len(expected_ids) > 10
    assert (back.version, back.meta) == (9, b"offsets:{0: 12}")
    assert back._filter.observations == header_observations
    mem.snapshot(tmp_path / "whole.snap")  # the snapshot file holds the later rows: not equal
    assert back.get_row(ids[0]) != mem.get_row(ids[0]) or back.get_row(ids[1]) != mem.get_row(ids[1])
    copy.close()
    kv.close()


def test_a_header_file_refuses_flipped_bytes_and_a_row_count_the_store_does_not_hold(tmp_path) -> None:
    mem = IdMemory(MemoryKV(), config())
    mem.put_rows(["a", "b"], [numbered_row(1, 4), numbered_row(2, 4)])
    write_header(tmp_path / "h", mem.header())
    data = (tmp_path / "h").read_bytes()
    for pos in [0, 5, len(data) // 2, len(data) - 1]:
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        (tmp_path / "bad").write_bytes(bytes(flipped))
        with pytest.raises(StateCodecError):
            read_header(tmp_path / "bad", 4)
    with pytest.raises(StateCodecError, match="config.dim is 8"):
        read_header(tmp_path / "h", 8)
    one = MemoryKV()
    fewer = IdMemory(one, config())
    fewer.put_rows(["a"], [numbered_row(1, 4)])
    fewer.flush()
    with pytest.raises(StateCodecError, match="2 rows but the store holds 1"):
        IdMemory.reopen(one, read_header(tmp_path / "h", 4), config())


def test_versions_held_accept_random_syncs_as_the_stored_rows_do_across_reopens(tmp_path) -> None:
    """Random syncs (new, newer, equal, stale, deleted and re-created rows) into a memory that
    holds every row's version and one that reads the stored rows: the same outcomes, rows and
    counts, through reopens of the store (the versions are read again) and a tiny cache."""
    from store.id_row import encode_row, row_key
    from store.row_batch import decode_served

    rng = np.random.default_rng(7)
    names = [f"r{k}" for k in range(40)]
    ref = IdMemory(MemoryKV(), config(cache_rows=1000))
    path = tmp_path / "rows"
    held = IdMemory(RocksDictKV(path), config(cache_rows=3, versions_held=True))
    stale = 0  # held's counter starts again at each reopen
    for step in range(30):
        picked = [names[k] for k in rng.choice(40, int(rng.integers(1, 15)), replace=False)]
        if step % 3 == 2:
            gone = picked[: len(picked) // 2]
            assert held.delete(gone).tolist() == ref.delete(gone).tolist()
            picked = picked[len(picked) // 2:]
        rows = [IdRow(rng.standard_normal(4).astype(np.float32), np.zeros(4, np.float32), 1.0, 1,
                      int(rng.integers(0, 12))) for _ in picked]
        _, batch = decode_served([row_key("item", i) for i in picked],
                                 [encode_row("item", i, r, served=True) for i, r in zip(picked, rows, strict=True)],
                                 "item", 4)
        applied, created = held.put_batch(batch)
        present = [i in ref for i in picked]
        assert applied.tolist() == ref.put_rows(picked, rows).tolist(), step
        assert created.tolist() == [not p for p in present], step
        stale += int((~applied).sum())
        assert len(held) == len(ref) and stale == ref.stale_rows_ignored
        if step % 7 == 6:  # a restart: the versions come from the store
            held.close()
            held = IdMemory(RocksDictKV(path), config(cache_rows=3, versions_held=True))
    assert held.ids() == ref.ids() and stale > 0
    assert all(held.get_row(i) == ref.get_row(i) for i in names)
    held.close()


def test_a_memory_that_does_not_track_touched_ids_applies_rows_and_keeps_no_set(memory_factory) -> None:
    def row(version: int, value: float) -> IdRow:
        return IdRow(np.full(4, value, np.float32), np.ones(4, np.float32), 0.0, 0, version)

    mem = memory_factory(track_touched=False)  # a worker's replica: it publishes nothing
    mem.put_rows(["a", "b"], [row(5, 1.0), row(5, 2.0)])
    mem.delete(["a"])
    mem.put_rows(["c"], [row(6, 3.0)])
    assert mem.drain_touched() == [] and len(mem._touched) == 0  # noqa: SLF001
    assert sorted(mem.ids()) == ["b", "c"] and mem.get_row("c") == row(6, 3.0)


def test_rows_written_ahead_go_live_at_put_batch_without_a_second_write(monkeypatch) -> None:
    """write_ahead does put_batch's KV write early (a worker: off the engine lock); put_batch then
    writes nothing, and the rows, held ones included, are as a plain put_batch leaves them. A
    memory with a row waiting to be written back, or a version changed since the read, writes
    at put_batch instead."""
    from store.id_row import encode_row, row_key
    from store.row_batch import decode_served

    def batch(rows: dict[str, tuple[int, float]]):
        rows = {i: IdRow(np.full(4, x, np.float32), np.zeros(4, np.float32), 1.0, 1, v) for i, (v, x) in rows.items()}
        return decode_served([row_key("item", i) for i in rows],
                             [encode_row("item", i, r, served=True) for i, r in rows.items()], "item", 4)[1]

    kv = MemoryKV()
    mem = IdMemory(kv, config(versions_held=True, track_touched=False))
    mem.put_batch(batch({"a": (1, 1.0), "b": (1, 1.0)}))
    assert mem.get_row("a").version == 1  # "a" is held from here on
    writes = []
    real = type(kv).write_batch
    monkeypatch.setattr(type(kv), "write_batch", lambda self, *a, **k: writes.append(1) or real(self, *a, **k))
    new = batch({"a": (2, 2.0), "b": (0, 9.0), "c": (2, 3.0)})  # b is older than stored: left out
    ahead = mem.write_ahead(new, mem.versions_ahead(new.ids))
    assert ahead.written and len(writes) == 1
    assert kv.get(mem._key("c")) is not None and mem.get_row("c") is None  # written, not live yet
    assert mem.get_row("a").version == 1  # the held row too
    applied, created = mem.put_batch(new, ahead)
    assert applied.tolist() == [True, False, True] and created.tolist() == [False, False, True]
    assert len(writes) == 1 and len(mem) == 3 and mem.stale_rows_ignored == 1
    assert [mem.get_row(i).vector[0] for i in "abc"] == [2.0, 1.0, 3.0]
    assert read_version(kv.get(mem._key("b"))) == 1  # the older row never reached the KV

    mem.put_rows(["d"], [IdRow(np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0, 1, 1)])  # dirty
    later = batch({"a": (3, 4.0)})
    refused = mem.write_ahead(later, mem.versions_ahead(later.ids))
    assert not refused.written and len(writes) == 1
    mem.flush()
    again = batch({"a": (4, 5.0)})
    ahead = mem.write_ahead(again, mem.versions_ahead(again.ids))
    mem.put_batch(batch({"c": (5, 6.0)}))  # a version changed since: put_batch writes itself
    writes.clear()
    assert mem.put_batch(again, ahead)[0].tolist() == [True] and len(writes) == 1
    assert mem.get_row("a").vector[0] == 5.0


def _served_batch(rows: dict[str, tuple[int, float]]):
    from store.id_row import encode_row, row_key
    from store.row_batch import decode_served

    rows = {i: IdRow(np.full(4, x, np.float32), np.zeros(4, np.float32), 1.0, 1, v) for i, (v, x) in rows.items()}
    return decode_served([row_key("item", i) for i in rows],
                         [encode_row("item", i, r, served=True) for i, r in rows.items()], "item", 4)[1]


def _served_row(item_id: str, version: int, value: float) -> bytes:
    from store.id_row import encode_row

    return encode_row("item", item_id, IdRow(np.full(4, value, np.float32), np.zeros(4, np.float32), 1.0, 1, version),
                      served=True)


class _LateReads(MemoryKV):
    """A KV whose reads of the keys in `late` return what they held when put there: a read that
    began before a write landed and returned after it."""

    def __init__(self) -> None:
        super().__init__()
        self.late: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.late.pop(key) if key in self.late else super().get(key)


@pytest.mark.parametrize("journal_rows", [65_536, 1])
def test_rows_cached_after_a_write_ahead_serve_the_new_rows_from_put_batch(monkeypatch, journal_rows) -> None:
    """write_ahead builds the new rows of the ids cached after its write and put_batch swaps them in
    (the LRU order kept); an id cached between the two, from a read that began before the write,
    is updated too (the journal; once it overflowed, a look-up of every id), and an id evicted
    between them is not cached again."""
    import store.id_memory as id_memory

    monkeypatch.setattr(id_memory, "_JOURNAL_ROWS", journal_rows)
    kv = _LateReads()
    mem = IdMemory(kv, config(versions_held=True, track_touched=False, cache_rows=4))
    mem.put_batch(_served_batch({i: (1, 1.0) for i in "abcdef"}))
    mem.lookup(["a", "b", "c"])  # cached, in this order
    new = _served_batch({i: (2, 2.0) for i in "abcdef"})
    ahead = mem.write_ahead(new, mem.versions_ahead(new.ids))
    assert ahead.written and set(ahead.rows) == {"a", "b", "c"}
    kv.late[mem._key("d")] = _served_row("d", 1, 1.0)  # read before the write, cached after it
    assert mem.lookup(["d", "e"])[0][:, 0].tolist() == [1.0, 2.0]  # "a" evicted (cache_rows 4)
    applied, _ = mem.put_batch(new, ahead)
    assert applied.all() and list(mem._cache) == ["b", "c", "d", "e"]  # noqa: SLF001
    assert mem.lookup(list("bcde"))[0][:, 0].tolist() == [2.0] * 4  # the cached ones (4 fit)
    assert mem.lookup(list("af"))[0][:, 0].tolist() == [2.0] * 2
    assert all(mem.get_row(i) == IdRow(np.full(4, 2.0, np.float32), np.zeros(4, np.float32), 1.0, 1, 2)
               for i in "abcdef")
