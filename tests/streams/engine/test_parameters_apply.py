"""Parameter sync without a broker: records of the `parameters` topic applied to the ID half,
the worker's counters and dead letters, param_version on recommendations, the serving gate."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import numpy as np
import torch

from store import IdRow, encode_row, row_key
from streams.engine.parameters import apply_parameters
from streams.worker.config import WorkerSettings
from streams.worker.runtime import Runtime
from tests.streams.engine.test_engine_hybrid import dense_table, make_id_half


def _row(value: float, version: int, dim: int = 8) -> IdRow:
    return IdRow(np.full(dim, value, np.float32), np.ones(dim, np.float32), 5.0, 3, version)


def _put(item_id: str, row: IdRow) -> tuple[bytes, bytes]:
    return row_key("item", item_id), encode_row("item", item_id, row)


def _corrupt(item_id: str, other: str) -> dict[str, tuple[bytes | None, bytes | None]]:
    """One record per way a parameters record can be corrupt, by its dead letter reason."""
    good = encode_row("item", item_id, _row(1.0, 9))
    flipped = bytearray(good)
    flipped[-10] ^= 0xFF  # inside the vector: only the CRC notices
    return {"bad parameter row": (row_key("item", item_id), bytes(flipped)),
            "bad parameter key": (b"no-slash", good),
            "bad parameter table": (row_key("user", item_id), encode_row("user", item_id, _row(1.0, 9))),
            "parameter key mismatch": (row_key("item", other), good),
            "parameter dim mismatch": (row_key("item", item_id), encode_row("item", item_id, _row(1.0, 9, dim=4)))}


def test_rows_tombstones_and_stale_rows_apply_in_order(catalogue):
    ids = [it["item_id"] for it in catalogue]
    half = make_id_half(ids, rowless={ids[2]})
    before = half.index()
    records = [_put(ids[0], _row(0.5, 4)), _put(ids[0], _row(0.9, 3)),  # the second is stale
               (row_key("item", ids[1]), None), (row_key("item", ids[2]), None),
               _put(ids[3], _row(0.0, 4)), (row_key("item", ids[3]), None), _put(ids[3], _row(0.25, 4))]
    got = [o.outcome for o in apply_parameters(half, records)]
    assert got == ["applied", "stale", "deleted", "absent", "applied", "deleted", "applied"]
    assert half.memory.version == 4 and half.memory.get_row(ids[0]) == _row(0.5, 4)
    assert ids[1] not in half.memory and half.memory.get_row(ids[3]) == _row(0.25, 4)
    table_ids, gated = dense_table(half)
    # updated in place: the same index, without the deleted row, with the changed one
    assert half.index() is before and len(before) == len(table_ids) and ids[1] not in before
    assert ids[1] not in table_ids
    users = half.user_vectors([ids[5:9]])
    assert half.terms(users, [[ids[1]]])[0][0] == 0.0  # a deleted row's ID term is exactly 0
    gate = half.fusion.gates(torch.from_numpy(_row(0.5, 4).vector[None])).item()
    assert np.allclose(gated[table_ids.index(ids[0])], 0.5 * gate)


def test_corrupt_records_are_refused_with_a_reason_and_the_rest_applied(catalogue):
    ids = [it["item_id"] for it in catalogue]
    half = make_id_half(ids, rowless=set())
    before = half.memory.get_row(ids[0])
    bad = _corrupt(ids[0], ids[1])
    out = apply_parameters(half, [*bad.values(), (None, None), (b"item/\xff", None),
                                  _put(ids[4], _row(2.0, 7))])
    assert [o.reason.split(":")[0] for o in out[:5]] == list(bad)
    assert [o.outcome for o in out] == ["corrupt"] * 7 + ["applied"]
    assert out[5].reason.startswith("bad parameter key") and out[6].reason.startswith("bad parameter key")
    assert half.memory.get_row(ids[0]) == before and half.memory.get_row(ids[1]) is not None
    assert half.memory.version == 7 and half.memory.get_row(ids[4]) == _row(2.0, 7)


def _record(offset: int, key: bytes | None, value: bytes | None, timestamp: int | None = None):
    return SimpleNamespace(topic="t-parameters", partition=0, offset=offset, key=key, value=value,
                           timestamp=timestamp)


def test_runtime_applies_counts_dead_letters_and_stamps_recommendations(engine_factory, catalogue,
                                                                        events):
    import time

    ids = [it["item_id"] for it in catalogue]
    engine = engine_factory()
    engine.id_half = make_id_half(ids, rowless=set())
    runtime = Runtime(WorkerSettings(), engine)
    letters: list[tuple[int, str]] = []

    async def dead_letter(rec, error: str) -> None:
        letters.append((rec.offset, error))

    runtime.dead_letter = dead_letter
    assert engine.process_one(events[0]).recommendation["param_version"] == 0  # checkpoint rows
    now_ms = int(time.time() * 1000) - 2000  # produced 2 s ago
    bad_key, bad_value = _corrupt(ids[0], ids[1])["bad parameter row"]
    records = [_record(0, bad_key, bad_value, now_ms), _record(1, *_put(ids[0], _row(0.5, 6)), now_ms),
               _record(2, row_key("item", ids[1]), None, now_ms), _record(3, *_put(ids[2], _row(0.5, 2)))]
    asyncio.run(runtime.apply_parameters(0, records))
    assert letters == [(0, letters[0][1])] and letters[0][1].startswith("bad parameter row: ")
    snap = runtime.param_snapshot()
    assert snap["param_version"] == 6 and snap["param_rows"] == len(ids) - 1
    assert (snap["param_applied"], snap["param_deleted"], snap["param_corrupt"]) == (2, 1, 1)
    assert snap["param_stale"] == snap["param_absent"] == 0
    assert snap["param_lag_n"] == 2 and 1.5 < snap["param_lag_p50_s"] < 60  # no timestamp: no lag
    reg = runtime.metrics.registry
    assert reg.get_sample_value("threadrec_parameter_version") == 6
    assert reg.get_sample_value("threadrec_parameter_records_total", {"outcome": "corrupt"}) == 1
    assert reg.get_sample_value("threadrec_parameter_sync_lag_seconds_count") == 2
    assert engine.process_one(events[1]).recommendation["param_version"] == 6


def test_content_only_recommendations_carry_a_null_param_version(engine_factory, events):
    engine = engine_factory()
    assert engine.process_one(events[0]).recommendation["param_version"] is None
    runtime = Runtime(WorkerSettings(), engine)
    assert runtime.param_snapshot()["param_version"] is None


class _Replica:
    def __init__(self, behind: int) -> None:
        self.caught_up, self._behind = asyncio.Event(), behind

    def behind(self) -> int:
        return 0 if self.caught_up.is_set() else self._behind


def test_serving_waits_for_the_parameters_replica_too():
    async def drive() -> tuple[bool, bool]:
        runtime = Runtime(WorkerSettings(), engine=None)
        runtime.replicator, runtime.param_replica = _Replica(0), _Replica(3)
        runtime.replicator.caught_up.set()
        assert not runtime.replicas_current() and runtime.replicas_behind() == 3
        waiter = asyncio.create_task(runtime.wait_for_replicas())
        await asyncio.sleep(0.3)
        early = waiter.done()
        runtime.param_replica.caught_up.set()
        await asyncio.wait_for(waiter, 5)
        return early, runtime.replicas_current()

    assert asyncio.run(drive()) == (False, True)


def test_a_record_cannot_pin_a_row_or_the_reported_version(engine_factory, catalogue):
    from streams.worker.parameters import head_version

    ids = [it["item_id"] for it in catalogue]
    engine = engine_factory()
    engine.id_half = make_id_half(ids, rowless=set())
    runtime = Runtime(WorkerSettings(param_version_step=100), engine)
    letters: list[tuple[int, str]] = []

    async def dead_letter(rec, error: str) -> None:
        letters.append((rec.offset, error.split(":")[0]))

    runtime.dead_letter = dead_letter
    # the newest record of each partition at start; one of them forged far ahead
    heads = [_record(9, *_put(ids[k], _row(0.1, v))) for k, v in enumerate((40, 42, 2**64 - 1))]
    runtime.take_param_heads(heads)
    assert runtime.param_head == 42 == head_version(heads, 100)
    records = [_record(0, *_put(ids[0], _row(0.9, 2**64 - 1))), _record(1, *_put(ids[1], _row(0.9, 143))),
               _record(2, *_put(ids[2], _row(0.9, 2**53))), _record(3, *_put(ids[0], _row(0.5, 41))),
               _record(4, *_put(ids[1], _row(0.5, 142)))]
    asyncio.run(runtime.apply_parameters(0, records))
    assert letters == [(0, "implausible version"), (1, "implausible version"), (2, "implausible version")]
    assert engine.id_half.memory.get_row(ids[0]) == _row(0.5, 41)  # the legitimate row won
    assert runtime.param_snapshot()["param_version"] == 142
    assert head_version([_record(0, *_put(ids[0], _row(0.1, 2**64 - 1)))], 100) == 0  # beyond 2**53
    assert head_version([_record(0, row_key("item", ids[0]), None)], 100) == 0  # a tombstone


def test_served_rows_and_old_records_with_slots_apply_alike_an_unknown_format_is_refused(catalogue):
    """Format 2 (the vector alone) is what the trainer sends now; format 1 records (with the
    optimizer slot) already in a compacted topic still apply; a format this worker does not know
    is dead-lettered with a reason that names it."""
    import struct
    import zlib

    from store.id_row import SERVED_FORMAT

    ids = [it["item_id"] for it in catalogue]
    old, new = make_id_half(ids, rowless=set()), make_id_half(ids, rowless=set())
    rows = {ids[k]: _row(0.1 * (k + 1), 4) for k in range(3)}
    apply_parameters(old, [_put(i, r) for i, r in rows.items()])
    served = [(row_key("item", i), encode_row("item", i, r, served=True)) for i, r in rows.items()]
    assert all(v[4] == SERVED_FORMAT for _, v in served)
    assert [o.outcome for o in apply_parameters(new, served)] == ["applied"] * 3
    for i, r in rows.items():
        assert np.array_equal(new.memory.get_row(i).vector, r.vector)
        assert np.array_equal(old.memory.get_row(i).vector, r.vector)
    assert new.memory.version == old.memory.version == 4
    body = bytearray(served[0][1][:-4])
    body[4] = 3  # a future format
    future = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    out = apply_parameters(new, [(served[0][0], future)])
    assert out[0].outcome == "corrupt"
    assert out[0].reason == "bad parameter row: id row: unknown format version 3 (known: [1, 2])"


def test_a_sync_applied_in_slices_serves_between_them_and_ends_with_the_bulk_apply(engine_factory, catalogue,
                                                                                   events):
    """Slices of 3 records under the engine lock: an engagement waiting for the lock is served
    between two slices, and the rows and ID index end as one bulk apply leaves them."""
    ids = [it["item_id"] for it in catalogue]
    engine = engine_factory()
    engine.id_half = make_id_half(ids, rowless=set())
    runtime = Runtime(WorkerSettings(param_apply_slice=3), engine)
    rng = np.random.default_rng(0)
    records = [_record(k, *_put(ids[k % len(ids)], _row(float(rng.normal()), 1 + k // len(ids))))
               for k in range(3 * len(ids))]
    records.append(_record(len(records), row_key("item", ids[0]), None))  # a tombstone in the last slice
    served: list[int] = []  # rows applied when each engagement was served
    prepared_on: list[str] = []  # the thread each slice's reads ran on
    prepare = engine.prepare_parameters

    def recorded(pairs, ceiling):
        prepared_on.append(threading.current_thread().name)
        return prepare(pairs, ceiling)
    engine.prepare_parameters = recorded

    async def drive() -> None:
        applying = asyncio.create_task(runtime.apply_parameters(0, records))
        while not applying.done():
            async with runtime.lock:
                served.append(runtime.params.counts["applied"])
                assert engine.process_one(events[len(served) % len(events)]).recommendation["items"]
            await asyncio.sleep(0)
        await applying

    asyncio.run(drive())
    assert any(0 < n < len(records) - 1 for n in served)  # served while the sync was half applied
    # each slice read off the lock on the prepare thread, never on the engine's or the loop's
    assert len(prepared_on) >= len(records) // 3 and all(n.startswith("replica-prepare") for n in prepared_on)
    bulk = make_id_half(ids, rowless=set())
    bulk.index()
    apply_parameters(bulk, [(r.key, r.value) for r in records])
    half = engine.id_half
    assert half.memory.ids() == bulk.memory.ids() and ids[0] not in half.memory
    for item in bulk.memory.ids():
        assert half.memory.get_row(item) == bulk.memory.get_row(item)
    users = half.user_vectors([ids[5:9]])
    assert half.retrieve(users, 10, [set()]) == bulk.retrieve(users, 10, [set()])


def test_a_slice_whose_read_ahead_fails_is_applied_under_the_lock_all_the_same(engine_factory, catalogue):
    """Whatever the read ahead of the lock raises, the worker goes on: the slice is applied whole
    under the lock, as before there was a read ahead, and its rows are served."""
    ids = [it["item_id"] for it in catalogue]
    engine = engine_factory()
    engine.id_half = make_id_half(ids, rowless=set())

    def broken(pairs):
        raise RuntimeError("plan failed")
    engine.prepare_parameters = broken
    runtime = Runtime(WorkerSettings(param_apply_slice=4), engine)
    records = [_record(k, *_put(ids[k], _row(0.5, 3))) for k in range(10)]
    asyncio.run(runtime.apply_parameters(0, records))
    assert runtime.params.counts["applied"] == 10 and runtime.params.counts["corrupt"] == 0
    assert all(engine.id_half.memory.get_row(ids[k]).version == 3 for k in range(10))


def test_the_pacer_sizes_slices_to_a_share_of_a_batch_at_the_measured_cost():
    from streams.engine.pacer import ApplyPacer

    pacer = ApplyPacer(budget_s=0.002, most=500, share=0.25, least=1, first=64)
    assert pacer.next() == 64  # nothing measured yet
    pacer.took(64, 0.064)  # 1 ms per record: two fit the budget (no batch seen yet)
    assert pacer.next() == 2 and ApplyPacer(0.002, 500, per_record_s=1e-3).next() == 32  # `least`
    for _ in range(40):  # records turn cheap: 2 us each; the budget holds about 1000
        pacer.took(100, 0.0002)
    assert pacer.next() == 500  # the cap
    for _ in range(40):  # engagement batches of 2 ms: a slice may take a quarter, 0.5 ms
        pacer.served(0.002)
    assert abs(pacer.allowed_s() - 0.0005) < 1e-9 and 240 <= pacer.next() <= 250
    pacer.served(1e-6)  # however short the batches, a slice keeps the floor
    assert pacer.allowed_s() >= pacer.floor_s
    pacer.took(1000, 60.0)  # a record of a minute: still one per slice, never none
    assert ApplyPacer(budget_s=0.002, most=500, least=1, per_record_s=60.0).next() == 1 and pacer.next() >= 1
    assert ApplyPacer(budget_s=0.002, most=3, per_record_s=1e-6).next() == 3  # `most` over `least`


def test_the_rate_floor_keeps_slices_at_its_rate_however_long_the_batches():
    from streams.engine.pacer import ApplyPacer

    def rate(pacer: ApplyPacer, batch_s: float, per_record_s: float) -> float:
        pacer.batch_s, pacer.per_record_s = batch_s, per_record_s
        n = pacer.next()
        return n / (batch_s + n * per_record_s)  # records per batch and slice, in turn

    # a saturated worker: batches of half a second, 60 us per record; the 2 ms budget alone
    # lets 33 records through per batch (66/s)
    assert rate(ApplyPacer(0.002, 4096), 0.5, 6e-5) < 70
    floored = ApplyPacer(0.002, 4096, min_per_s=1000.0)
    for batch_s in (0.05, 0.5, 2.0):
        assert 1000.0 <= rate(floored, batch_s, 6e-5) < 1020.0  # the floor, rounded up
    floored.per_record_s = 2e-3  # the floor outruns the cost per record: the largest slices
    assert floored.next() == 4096
    floored.batch_s = 0.0  # no batch seen: nothing owed, the share's rule
    assert floored.next() == ApplyPacer(0.002, 4096, per_record_s=2e-3).next()
