"""Redeliveries after a kill -9, no broker: the user's state, not the offsets table alone,
decides what is a duplicate, and a partition's end that faust never delivered is re-read.

The two tables reach their changelogs independently (faust buffers the sends), so a kill -9
can leave the offsets table ahead of a user's state (the state write was lost: the events must
be handled again) or the local store ahead of the changelog (the redelivered events are
duplicates, and their users' states must reach the changelog now). A chaos run of the default
worker lost both ways, and lost the last 18 engagements of a partition that faust dropped at
start-up with no later record to reveal the gap.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

from store import decode_user_state
from streams.kafka.gap_fetcher import FetchedMessage
from streams.worker.batch import handle_batch
from streams.worker.config import WorkerSettings
from streams.worker.runtime import Runtime
from streams.worker.tails import repair_tails
from streams.worker.topics import Tables
from tests.streams.worker.test_engagement_batch_gaps import _Engine, _Fetcher, _Topic


class _Event:
    def __init__(self, offset: int, event: dict) -> None:
        self.message = FetchedMessage("engagements", 0, offset, event["user_id"].encode(),
                                      json.dumps(event).encode(), 0.0)


class _Recording(dict):
    """A table that records every write (faust sends each one to the changelog)."""

    def __init__(self, *a) -> None:
        super().__init__(*a)
        self.writes: list[bytes] = []

    def __setitem__(self, key, value) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def _batches(events: list[dict], cut: int):
    evs = [_Event(i, e) for i, e in enumerate(events)]
    return evs[:cut], evs[cut:]


def _run(engine, tables: Tables, *batches):
    runtime = Runtime(WorkerSettings(), engine)
    topics = SimpleNamespace(recommendations=_Topic(), deadletter=_Topic())
    for batch in batches:
        asyncio.run(handle_batch(batch, runtime, topics, tables))
    return runtime, topics


def _states(tables: Tables) -> dict[str, tuple]:
    out = {}
    for key, raw in tables.states.items():
        st = decode_user_state(raw)
        out[key.decode()] = (st.item_ids, st.timestamps.tolist(), st.applied)
    return out


def test_a_redelivery_its_users_state_lacks_is_handled_again(engine_factory, events):
    first, second = _batches(events[:16], 8)
    clean = Tables(states={}, offsets={b"0": b"0"})  # type: ignore[arg-type]
    _run(engine_factory(), clean, first, second)
    tables = Tables(states={}, offsets={b"0": b"0"})  # type: ignore[arg-type]
    _run(engine_factory(), tables, first)
    after_first = dict(tables.states)
    _run(engine_factory(), tables, second)
    # kill -9: the offsets write of `second` reached the changelog, its state writes did not
    tables.states.clear()
    tables.states.update(after_first)
    assert tables.offsets[b"0"] == b"16"
    runtime, topics = _run(engine_factory(), tables, second)  # the restart redelivers it
    assert [r["source"]["offset"] for r in topics.recommendations.sent] == \
        [ev.message.offset for ev in second]
    assert runtime.redeliveries_reapplied == len(second) and runtime.duplicates_skipped == 0
    assert _states(tables) == _states(clean)
    assert tables.offsets[b"0"] == b"16"


def test_a_redelivery_its_users_state_holds_is_dropped_and_the_state_written_again(
        engine_factory, events):
    first, second = _batches(events[:16], 8)
    tables = Tables(states=_Recording(), offsets=_Recording({b"0": b"0"}))  # type: ignore[arg-type]
    _run(engine_factory(), tables, first, second)
    before = _states(tables)
    tables.states.writes.clear()
    tables.offsets.writes.clear()
    # kill -9 after the local writes, before their changelog sends: the restart redelivers
    runtime, topics = _run(engine_factory(), tables, second)
    assert topics.recommendations.sent == [] and topics.deadletter.sent == []
    assert runtime.duplicates_skipped == len(second) and runtime.redeliveries_reapplied == 0
    # each user's state (and the offset) goes to the changelog again, unchanged
    assert sorted(tables.states.writes) == sorted({ev.message.key for ev in second})
    assert tables.offsets.writes == [b"0"] and tables.offsets[b"0"] == b"16"
    assert _states(tables) == before


def test_only_the_offsets_a_state_lacks_are_handled_again(engine_factory, events):
    user_events = [e for e in events if e["user_id"] == events[0]["user_id"]][:6]
    evs = [_Event(i, e) for i, e in enumerate(user_events)]
    tables = Tables(states={}, offsets={b"0": b"0"})  # type: ignore[arg-type]
    _run(engine_factory(), tables, evs[:4])
    tables.offsets[b"0"] = b"6"  # offsets 4, 5 recorded, their state write lost
    runtime, topics = _run(engine_factory(), tables, evs)  # all six redelivered
    assert [r["source"]["offset"] for r in topics.recommendations.sent] == [4, 5]
    assert (runtime.duplicates_skipped, runtime.redeliveries_reapplied) == (4, 2)
    st = decode_user_state(tables.states[evs[0].message.key])
    assert st.total_events == 6 and st.applied == {0: 5}


class _EndsFetcher(_Fetcher):
    def __init__(self, ends: dict[int, int]) -> None:
        super().__init__()
        self._ends = ends

    async def ends(self, partitions: list[int]) -> dict[int, int]:
        return {p: self._ends[p] for p in partitions if p in self._ends}


def _tail_setup(ends: dict[int, int], offsets: dict[bytes, bytes], tail_wait_s: float = 5.0):
    fetcher = _EndsFetcher(ends)
    runtime = Runtime(WorkerSettings(tail_wait_s=tail_wait_s), _Engine(), fetcher=fetcher)  # type: ignore[arg-type]
    topics = SimpleNamespace(engagements=SimpleNamespace(get_topic_name=lambda: "engagements"),
                             recommendations=_Topic(), deadletter=_Topic())
    tables = Tables(states={}, offsets=offsets)  # type: ignore[arg-type]
    return runtime, topics, tables


def test_a_partition_end_faust_never_delivered_is_reread_and_handled():
    # partition 0: 232 handled, the log holds 250 and nothing came for a while; partition 1
    # is at its end; partition 2 delivered a moment ago (faust is still working on it)
    runtime, topics, tables = _tail_setup({0: 250, 1: 50, 2: 90},
                                          {b"0": b"232", b"1": b"50", b"2": b"80"})
    long_ago = time.monotonic() - 60
    runtime.delivered_at.update({0: long_ago, 1: long_ago, 2: time.monotonic()})
    n = asyncio.run(repair_tails([0, 1, 2], runtime, topics, tables, ready_since=long_ago))
    assert n == 18 and runtime.fetcher.calls == [(0, 232, 250)]
    assert runtime.engine.seen == [(0, o) for o in range(232, 250)]
    assert [r["source"]["offset"] for r in topics.recommendations.sent] == list(range(232, 250))
    assert tables.offsets[b"0"] == b"250" and runtime.tails_repaired == 1
    # handled: nothing more to re-read; a later redelivery by faust is a duplicate
    assert asyncio.run(repair_tails([0, 1, 2], runtime, topics, tables, ready_since=long_ago)) == 0


def test_no_tail_is_reread_before_the_worker_was_ready_for_tail_wait_s():
    runtime, topics, tables = _tail_setup({0: 250}, {b"0": b"232"})
    n = asyncio.run(repair_tails([0], runtime, topics, tables, ready_since=time.monotonic()))
    assert n == 0 and runtime.fetcher.calls == []


def test_a_tail_reread_is_bounded_by_the_batch_size():
    runtime, topics, tables = _tail_setup({0: 1000}, {b"0": b"10"})
    long_ago = time.monotonic() - 60
    asyncio.run(repair_tails([0], runtime, topics, tables, ready_since=long_ago))
    assert runtime.fetcher.calls == [(0, 10, 10 + WorkerSettings().batch_size)]
