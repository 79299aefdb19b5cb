"""The trainer's snapshots: a RocksDB checkpoint of rows and histories that restores exactly what
was snapshotted (nothing learned after it), shares unchanged table files with the snapshot before,
and old whole-file snapshots (format 1) that still restore."""

from __future__ import annotations

import numpy as np

from store import IdMemory, KVStore
from store.config import FrequencyConfig, IdMemoryConfig
from store.id_row import IdRow
from store.rocksdict_backend import RocksDictKV
from streams.trainer import snapshot
from streams.trainer.histories import Histories, History

CFG = IdMemoryConfig(dim=4, frequency=FrequencyConfig(width=4096, depth=4))


def histories_in(kv: KVStore) -> Histories:
    return Histories(kv, 5, 3)


def busy(kv: RocksDictKV, rows: int, users: int, seed: int) -> tuple[IdMemory, Histories]:
    rng = np.random.default_rng(seed)
    memory, hist = IdMemory(kv, CFG), histories_in(kv)
    ids = [f"i{k}" for k in range(rows)]
    memory.put_rows(ids, [IdRow(v, np.full(4, 0.1, np.float32)) for v in rng.standard_normal((rows, 4), np.float32)])
    memory.apply_gradients(ids[: rows // 2], rng.standard_normal((rows // 2, 4)), ts=10.0)
    for u in range(users):
        hist.put(f"u{u}", History([f"i{(u + k) % rows}" for k in range(4)], [f"i{u % rows}"], 100.0 + u))
    return memory, hist


def state(memory: IdMemory, hist: Histories) -> tuple:
    rows = {i: memory.get_row(i) for i in memory.ids()}
    users = {key: value for key, value in hist.entries()}
    return rows, users, memory.version, memory.meta, list(hist._seen.items())


def test_a_snapshot_restores_rows_and_histories_as_they_were_and_nothing_learned_after(tmp_path):
    kv = RocksDictKV(tmp_path / "rows")
    memory, hist = busy(kv, 300, 40, seed=1)
    memory.version, memory.meta = 7, b"m"
    meta = snapshot.SnapshotMeta(offsets={0: 12, 1: 30}, version=7, stats={"steps": 3})
    snapshot.write(tmp_path / "snaps", kv, memory, meta)
    expected = state(memory, hist)
    # learned after the snapshot, then a kill -9: the live store holds more than the snapshot
    memory.apply_gradients(["i1", "i2"], np.ones((2, 4)), ts=20.0)
    memory.put_rows(["late"], [IdRow(np.ones(4, np.float32), np.ones(4, np.float32))])
    hist.put("u1", History(["i9"], [], 500.0))
    hist.put("new", History(["i3"], [], 501.0))
    memory.flush()
    kv.close()
    snap = snapshot.current(tmp_path / "snaps")
    back, users, got = snapshot.restore(snap, tmp_path / "rows", CFG, histories_in)
    assert state(back, users) == expected and len(back) == 300 and len(users) == 40
    assert (got.offsets, got.version, got.stats) == ({0: 12, 1: 30}, 7, {"steps": 3})
    assert users.expire(100.0 + 10) == 10  # the sweep's order is rebuilt from the store
    back.kv.close()


def test_a_snapshot_links_the_table_files_the_one_before_holds_and_keeps_two(tmp_path):
    kv = RocksDictKV(tmp_path / "rows")
    memory, hist = busy(kv, 5_000, 10, seed=2)
    snaps = []
    for k in range(3):
        memory.apply_gradients([f"i{k}"], np.ones((1, 4)), ts=30.0 + k)
        snaps.append(snapshot.write(tmp_path / "snaps", kv, memory, snapshot.SnapshotMeta(version=k)))
    assert sorted(p.name for p in (tmp_path / "snaps").glob("snap-*")) == [s.name for s in snaps[1:]]
    inodes = [{f.name: f.stat().st_ino for f in (s / "kv").glob("*.sst")} for s in snaps[1:]]
    shared = set(inodes[0]) & set(inodes[1])
    assert shared and all(inodes[0][n] == inodes[1][n] for n in shared)
    kv.close()
    back, _, meta = snapshot.restore(snaps[2], tmp_path / "rows", CFG, histories_in)
    assert meta.version == 2 and len(back) == 5_000
    back.kv.close()


def test_a_format_1_snapshot_still_restores(tmp_path):
    kv = RocksDictKV(tmp_path / "old")
    memory, hist = busy(kv, 200, 20, seed=3)
    memory.version = 4
    old = tmp_path / "snaps" / "snap-00000001"
    old.mkdir(parents=True)
    memory.snapshot(old / "rows.snap")
    hist.snapshot(old / "histories.jsonl")
    (old / "meta.json").write_text(snapshot.SnapshotMeta(offsets={0: 5}, version=4).to_json())
    expected = state(memory, hist)
    kv.close()
    stale = RocksDictKV(tmp_path / "rows")  # a live store with rows and users of its own
    busy(stale, 50, 5, seed=9)[0].flush()
    stale.close()
    back, users, meta = snapshot.restore(old, tmp_path / "rows", CFG, histories_in)
    assert state(back, users)[:4] == expected[:4] and meta.offsets == {0: 5}
    back.kv.close()
