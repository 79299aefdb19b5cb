"""The expiry sweep drops users inactive for ttl_s of their partition's event time, a slice of
the table at a time, deciding on each state's header alone."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import faust
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streams.worker.expiry as expiry
from store import StateCodecError, UserState, decode_user_state, encode_user_state
from streams.worker.config import WorkerSettings
from streams.worker.expiry import ExpirySweep, home_partition
from streams.worker.runtime import Runtime
from streams.worker.table_scan import RocksTableScan, scan_of
from streams.worker.topics import Tables

DAY = 86_400.0


def _state(user: str, last_seen: float, partition: int | None, offset: int = 5) -> bytes:
    applied = {} if partition is None else {partition: offset}
    return encode_user_state(UserState(user_id=user, last_seen=last_seen, applied=applied))


def _runtime(ttl_s: float = 30 * DAY, **settings) -> Runtime:
    engine = SimpleNamespace(config=SimpleNamespace(ttl_s=ttl_s), stats=SimpleNamespace(expired=0))
    engine.count_expired = lambda n: setattr(engine.stats, "expired", engine.stats.expired + n)
    return Runtime(WorkerSettings(**settings), engine=engine)


def full_sweep_oracle(states: dict[bytes, bytes], ttl_s: float, marks: dict[int, float]) -> set[bytes]:
    """The keys the sweep before slicing deleted: every state decoded whole."""
    out = set()
    for key, raw in states.items():
        try:
            st_ = decode_user_state(raw)
        except StateCodecError:
            continue
        part = home_partition(st_)
        if part is not None and part in marks and marks[part] - st_.last_seen > ttl_s:
            out.add(key)
    return out


def test_inactive_users_expire_by_their_partitions_event_time():
    runtime = _runtime(sweep_slice_keys=2)
    runtime.clock.watermarks.update({0: 100 * DAY})  # partition 1 has seen nothing yet
    states = {b"old": _state("old", 60 * DAY, 0), b"recent": _state("recent", 80 * DAY, 0),
              b"other": _state("other", 1 * DAY, 1), b"none": _state("none", 1 * DAY, None)}
    tables = Tables(states=dict(states), offsets={})  # type: ignore[arg-type]
    sweep = ExpirySweep(runtime, tables, "engagements")
    assert asyncio.run(sweep.run_pass()) == 1
    assert set(tables.states) == {b"recent", b"other", b"none"}
    assert runtime.engine.stats.expired == 1
    runtime.clock.watermarks[1] = 40 * DAY
    assert asyncio.run(sweep.run_pass()) == 1
    assert set(tables.states) == {b"recent", b"none"}


def test_home_partition_is_where_the_latest_event_came_from():
    st_ = decode_user_state(_state("u", 1.0, 3))
    assert home_partition(st_) == 3
    st_.applied = {0: 9, 2: 40}
    assert home_partition(st_) == 2


users = st.lists(
    st.tuples(st.floats(0, 100), st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 50),
              st.booleans()),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(users=users, marks=st.dictionaries(st.integers(0, 3), st.floats(0, 100), max_size=4),
       ttl=st.floats(0, 50), slice_keys=st.integers(1, 9))
def test_a_sliced_sweep_deletes_exactly_what_a_full_sweep_deletes(users, marks, ttl, slice_keys):
    states = {}
    for k, (seen, part, offset, corrupt) in enumerate(users):
        raw = _state(f"u{k}", seen * DAY, part, offset)
        if part is not None:  # a second, older partition: the home is the highest offset
            raw = encode_user_state(UserState(user_id=f"u{k}", last_seen=seen * DAY,
                                              applied={part: offset + 1, (part + 1) % 4: offset}))
        states[f"u{k:03d}".encode()] = raw[:-1] + bytes([raw[-1] ^ 1]) if corrupt else raw
    runtime = _runtime(ttl_s=ttl * DAY, sweep_slice_keys=slice_keys)
    runtime.clock.watermarks.update({p: m * DAY for p, m in marks.items()})
    want = full_sweep_oracle(states, ttl * DAY, runtime.clock.watermarks)
    tables = Tables(states=dict(states), offsets={})  # type: ignore[arg-type]
    sweep = ExpirySweep(runtime, tables, "engagements")
    slices = 0
    sweep.in_pass = True
    while sweep.in_pass:  # one slice per tick, resuming from the cursor
        asyncio.run(sweep.step())
        slices += 1
    assert set(states) - set(tables.states) == want
    assert sweep.pass_expired == len(want) == runtime.engine.stats.expired
    assert slices == len(states) // slice_keys + 1


def test_passes_start_every_sweep_every_s_and_run_a_slice_per_tick():
    runtime = _runtime(sweep_slice_keys=3, sweep_every_s=60.0)
    runtime.clock.watermarks[0] = 100 * DAY
    states = {f"u{k}".encode(): _state(f"u{k}", (10 if k % 2 else 90) * DAY, 0) for k in range(8)}
    tables = Tables(states=dict(states), offsets={})  # type: ignore[arg-type]
    sweep = ExpirySweep(runtime, tables, "engagements")
    t0 = sweep.pass_started
    assert asyncio.run(sweep.tick(t0 + 59)) == 0 and len(tables.states) == 8  # not due yet
    got = [asyncio.run(sweep.tick(t0 + 60 + i)) for i in range(3)]  # 3 + 3 + 2 keys
    assert sum(got) == 4 and not sweep.in_pass and len(tables.states) == 4
    assert asyncio.run(sweep.tick(t0 + 100)) == 0 and not sweep.in_pass  # next pass at t0 + 120
    assert sweep.pass_started == t0 + 60
    assert asyncio.run(sweep.tick(t0 + 120)) == 0 and sweep.in_pass  # it began: 3 keys read
    assert sweep.cursor == (-1, b"u4")  # u0, u2, u4 of the four users left


def test_a_user_who_came_back_while_the_slice_was_peeked_is_kept(monkeypatch):
    runtime = _runtime(sweep_slice_keys=10)
    runtime.clock.watermarks[0] = 100 * DAY
    tables = Tables(states={b"a": _state("a", 1 * DAY, 0), b"b": _state("b", 1 * DAY, 0)},
                    offsets={})  # type: ignore[arg-type]
    peek = expiry.stale_entries

    def engagement_meanwhile(*args):
        tables.states[b"a"] = _state("a", 99 * DAY, 0, offset=6)  # written by the agent
        return peek(*args)

    monkeypatch.setattr(expiry, "stale_entries", engagement_meanwhile)
    assert asyncio.run(ExpirySweep(runtime, tables, "engagements").run_pass()) == 1
    assert set(tables.states) == {b"a"}


@pytest.fixture
def faust_table(tmp_path):
    app = faust.App("scan-test", broker="kafka://127.0.0.1:1", store="rocksdb://",
                    datadir=str(tmp_path))
    table = app.Table("user-state", key_type=bytes, value_type=bytes, partitions=4)
    yield table
    for db in table.data._dbs.values():
        db.close()


def test_the_rocksdb_scan_reads_active_partitions_in_key_order_from_a_cursor(faust_table, monkeypatch):
    store = faust_table.data
    topic = faust_table.changelog_topic_name
    want = []
    for p in range(4):
        db = store._db_for_partition(p)
        db[store.offset_key] = b"17"  # faust's own offset record is not a user
        for key in (b"k9", b"k1", b"k5"):
            db[key + bytes([48 + p])] = b"v%d" % p
        if p != 2:  # partition 2 is a standby here: another worker's users
            want += [(p, key + bytes([48 + p])) for key in (b"k1", b"k5", b"k9")]
    actives = {faust.types.TP(topic, p) for p in (0, 1, 3)}
    monkeypatch.setattr(store.app.assignor, "assigned_actives", lambda: actives)
    scan = scan_of(faust_table)
    assert isinstance(scan, RocksTableScan)
    got, cursor = [], None
    while True:
        entries = scan.read(cursor, 2)
        got += [(e.partition, e.key) for e in entries]
        if len(entries) < 2:
            break
        cursor = (entries[-1].partition, entries[-1].key)
    assert got == want
    assert scan.get(3, b"k53") == b"v3" and scan.get(3, b"k50") is None


def test_the_pause_between_slices_holds_the_reads_to_their_share_of_the_time(monkeypatch):
    runtime = _runtime(sweep_slice_keys=2, sweep_share=0.05, sweep_slice_every_s=0.02)
    runtime.clock.watermarks[0] = 100 * DAY
    states = {f"u{k}".encode(): _state(f"u{k}", 90 * DAY, 0) for k in range(5)}
    sweep = ExpirySweep(runtime, Tables(states=states, offsets={}), "engagements")  # type: ignore[arg-type]
    assert sweep.pause_s() == 0.02  # nothing read yet: the least pause
    peek = expiry.stale_entries

    def slow_peek(*args):  # a slice whose read takes 10 ms
        time.sleep(0.01)
        return peek(*args)

    monkeypatch.setattr(expiry, "stale_entries", slow_peek)
    sweep.in_pass = True
    asyncio.run(sweep.step())
    assert 0.01 <= sweep.read_s < 0.05 and abs(sweep.pause_s() - 19 * sweep.read_s) < 1e-9
    while sweep.in_pass:
        asyncio.run(sweep.step())
    assert sweep.pause_s() == 0.02  # between passes: back to the least pause
