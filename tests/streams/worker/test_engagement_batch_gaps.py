"""handle_batch with a faust-style gap and redeliveries, no broker: the skipped records are
re-read (fake fetcher) and go through the same path as delivered ones, in offset order."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from store import UserState, encode_user_state
from streams.engine.types import BatchOutcome, EngineStats, EventResult
from streams.kafka.gap_fetcher import FetchedEvent, FetchedMessage
from streams.worker.batch import handle_batch, offset_key
from streams.worker.config import WorkerSettings
from streams.worker.runtime import Runtime
from streams.worker.topics import Tables

TOPIC = "engagements"


def _msg(partition: int, offset: int, value: bytes | None = None) -> FetchedMessage:
    if value is None:
        value = json.dumps({"user_id": f"u{partition}", "item_id": "i1", "ts": offset + 1.0,
                            "kind": "click"}).encode()
    return FetchedMessage(TOPIC, partition, offset, f"u{partition}".encode(), value, float(offset))


class _Event:
    """A delivered faust event as handle_batch sees it."""

    def __init__(self, partition: int, offset: int) -> None:
        self.message = _msg(partition, offset)


class _Engine:
    items = {"i1": {}}
    last_batch = EngineStats()

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def process_batch(self, events, sources, states):
        self.seen += [(s["partition"], s["offset"]) for s in sources]
        return BatchOutcome([EventResult(i, recommendation={"user_id": e["user_id"], "source": s})
                             for i, (e, s) in enumerate(zip(events, sources, strict=True))], {})


class _Fetcher:
    def __init__(self, absent: set[int] = frozenset()) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.absent = absent  # offsets that hold no record (compaction, transaction markers)

    async def fetch(self, partition: int, start: int, stop: int) -> list[FetchedEvent]:
        self.calls.append((partition, start, stop))
        return [FetchedEvent(_msg(partition, o)) for o in range(start, stop) if o not in self.absent]

    async def baseline(self, partition: int) -> int | None:
        return 0


class _Topic:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, key, value) -> asyncio.Future:
        self.sent.append(json.loads(value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)  # faust's send returns the delivery future
        return done


def _setup(offsets: dict[bytes, bytes], fetcher: _Fetcher):
    runtime = Runtime(WorkerSettings(), _Engine(), fetcher=fetcher)  # type: ignore[arg-type]
    topics = SimpleNamespace(recommendations=_Topic(), deadletter=_Topic())
    tables = Tables(states={}, offsets=offsets)  # type: ignore[arg-type]
    return runtime, topics, tables


def _holds(tables: Tables, partition: int, offset: int) -> None:
    """User u<partition>'s state records `offset` as applied (a redelivery of it is dropped)."""
    user = f"u{partition}"
    tables.states[user.encode()] = encode_user_state(UserState(user, applied={partition: offset}))


def test_gap_is_reread_and_handled_in_offset_order_before_the_event():
    fetcher = _Fetcher()
    runtime, topics, tables = _setup({offset_key(0): b"3"}, fetcher)
    _holds(tables, 0, 2)
    events = [_Event(0, 2), _Event(0, 3), _Event(1, 0), _Event(0, 6)]  # 2: redelivered; 4, 5 skipped
    asyncio.run(handle_batch(events, runtime, topics, tables))
    assert fetcher.calls == [(0, 4, 6)]
    assert runtime.engine.seen == [(0, 3), (1, 0), (0, 4), (0, 5), (0, 6)]
    assert [r["source"]["offset"] for r in topics.recommendations.sent if r["user_id"] == "u0"] \
        == [3, 4, 5, 6]
    assert tables.offsets == {b"0": b"7", b"1": b"1"}
    assert (runtime.gaps_repaired, runtime.records_reread, runtime.duplicates_skipped) == (1, 2, 1)


def test_absent_offsets_in_a_gap_are_accepted_and_the_partition_moves_on():
    fetcher = _Fetcher(absent={5})
    runtime, topics, tables = _setup({offset_key(0): b"4"}, fetcher)
    asyncio.run(handle_batch([_Event(0, 7)], runtime, topics, tables))
    assert runtime.engine.seen == [(0, 4), (0, 6), (0, 7)]
    assert tables.offsets[b"0"] == b"8"


def test_redelivered_batch_is_dropped_but_bad_records_in_a_gap_are_dead_lettered():
    class BadFetcher(_Fetcher):
        async def fetch(self, partition, start, stop):
            return [FetchedEvent(_msg(partition, start, b"{not json"))]

    runtime, topics, tables = _setup({offset_key(0): b"9"}, BadFetcher())
    _holds(tables, 0, 8)
    asyncio.run(handle_batch([_Event(0, 5), _Event(0, 8)], runtime, topics, tables))
    assert runtime.engine.seen == [] and topics.deadletter.sent == []
    asyncio.run(handle_batch([_Event(0, 11)], runtime, topics, tables))
    assert [d["offset"] for d in topics.deadletter.sent] == [9]
    assert runtime.engine.seen == [(0, 11)]
    assert tables.offsets[b"0"] == b"12"


def test_unknown_partition_starts_from_the_baseline():
    fetcher = _Fetcher()
    runtime, topics, tables = _setup({}, fetcher)
    asyncio.run(handle_batch([_Event(0, 2)], runtime, topics, tables))
    assert fetcher.calls == [(0, 0, 2)]
    assert runtime.engine.seen == [(0, 0), (0, 1), (0, 2)]
