"""Per-record isolation without a broker: whatever one record raises, that record is
dead-lettered with the exception as its reason, and every other record of its batch gets its
recommendation and state, equal to a run without the poison. Infrastructure failures (and a
run of unexpected failures) still stop the worker."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from store import decode_user_state
from streams.kafka.gap_fetcher import FetchedMessage
from streams.worker.batch import handle_batch
from streams.worker.config import WorkerSettings
from streams.worker.isolation import PoisonBreaker, PoisonStorm
from streams.worker.runtime import Runtime
from streams.worker.topics import Tables
from tests.streams.worker.test_engagement_batch_gaps import _Topic

POISON_TS = 1_234_567.0  # the engine is made to raise on exactly this event


class _Event:
    def __init__(self, offset: int, event: dict) -> None:
        value = json.dumps(event).encode()
        self.message = FetchedMessage("engagements", 0, offset, event["user_id"].encode(), value, 0.0)


def _run(engine, events: list[dict], raise_on=None):
    """handle_batch over `events` on partition 0 (offsets 0..); returns (topics, tables, runtime)."""
    real = engine.process_batch

    def process_batch(evs, sources, states):
        if raise_on is not None and any(raise_on(e) for e in evs):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(evs, sources, states)

    engine.process_batch = process_batch
    runtime = Runtime(WorkerSettings(), engine)
    topics = SimpleNamespace(recommendations=_Topic(), deadletter=_Topic())
    tables = Tables(states={}, offsets={b"0": b"0"})  # type: ignore[arg-type]
    asyncio.run(handle_batch([_Event(i, e) for i, e in enumerate(events)], runtime, topics, tables))
    return topics, tables, runtime


def _history(tables: Tables, user: str) -> list:
    st = decode_user_state(tables.states[user.encode()])
    return [(i, t) for i, t in zip(st.item_ids, st.timestamps.tolist(), strict=True)]


def test_a_poison_engagement_is_dead_lettered_and_its_batch_goes_on(engine_factory, events):
    batch = events[:12]
    poison = dict(batch[5], ts=POISON_TS)
    topics, tables, runtime = _run(engine_factory(), batch[:5] + [poison] + batch[5:],
                                   raise_on=lambda e: e["ts"] == POISON_TS)
    clean_topics, clean_tables, _ = _run(engine_factory(), batch)
    letters = topics.deadletter.sent
    assert [(d["offset"], d["error"].split(":")[0]) for d in letters] == [(5, "unexpected error")]
    assert "UnicodeEncodeError" in letters[0]["error"]
    got = [(r["user_id"], r["source"]["offset"]) for r in topics.recommendations.sent]
    assert got == [(e["user_id"], i) for i, e in enumerate(batch[:5] + [poison] + batch[5:]) if i != 5]
    assert set(tables.states) == set(clean_tables.states)
    for user in {e["user_id"] for e in batch}:  # every state equals a run without the poison
        assert _history(tables, user) == _history(clean_tables, user)
    assert tables.offsets[b"0"] == str(len(batch) + 1).encode()  # the poison's offset passed
    assert runtime.breaker.total == 1


def test_an_unexpected_validation_error_is_the_records_alone(engine_factory, events, monkeypatch):
    from streams.worker import batch as batch_module

    real = batch_module.check_key

    def check_key(event, key):
        if event["ts"] == POISON_TS:
            raise OverflowError("int too large to convert to float")
        real(event, key)

    monkeypatch.setattr(batch_module, "check_key", check_key)
    topics, _, _ = _run(engine_factory(), [events[0], dict(events[1], ts=POISON_TS), events[2]])
    assert [d["error"] for d in topics.deadletter.sent] == [
        "unexpected error: OverflowError: int too large to convert to float"]
    assert [r["source"]["offset"] for r in topics.recommendations.sent] == [0, 2]


def test_infrastructure_failures_still_stop_the_batch(engine_factory, events):
    with pytest.raises(OSError):
        _run(engine_factory(), events[:3], raise_on=lambda e: (_ for _ in ()).throw(OSError("disk")))


def test_a_run_of_unexpected_failures_is_a_storm_not_bad_input():
    breaker = PoisonBreaker(limit=3)
    breaker.failed(ValueError("a"))
    breaker.succeeded()
    breaker.failed(ValueError("b"))
    breaker.failed(ValueError("c"))
    with pytest.raises(PoisonStorm):
        breaker.failed(ValueError("d"))
    with pytest.raises(MemoryError):
        PoisonBreaker().failed(MemoryError())


def _registered_task(runtime: Runtime, name: str):
    """The named task of a real faust app with the worker's agents registered (no broker)."""
    import faust

    from streams.worker.agents import register_agents

    app = faust.App(f"iso-{name}", broker="kafka://127.0.0.1:1", store="memory://")
    topics = SimpleNamespace(engagements=app.topic("e"), recommendations=_Topic(), deadletter=_Topic())
    register_agents(app, topics, Tables(states={}, offsets={}), runtime)  # type: ignore[arg-type]
    return next(t for t in app._app_tasks if t.__name__ == name)


class _DyingReplica:
    def __init__(self, how: str) -> None:
        self.how = how

    async def run(self) -> None:
        if self.how == "raise":
            raise OSError("items store gone")
        await asyncio.sleep(3600)  # killed from outside below


@pytest.mark.parametrize("how", ["raise", "cancel"])
def test_a_dead_items_replica_task_ends_the_process(engine_factory, how):
    runtime = Runtime(WorkerSettings(), engine_factory(items=False))
    exits: list[int] = []
    runtime.exit = exits.append
    runtime.replicator = _DyingReplica(how)
    task_fn = _registered_task(runtime, "replicate_items")

    async def main() -> None:
        task = asyncio.create_task(task_fn())
        await asyncio.sleep(0.05)
        task.cancel()  # a no-op once it has raised
        with pytest.raises((OSError, asyncio.CancelledError)):
            await task

    asyncio.run(main())
    assert exits == [3]  # a supervisor sees a non-zero exit, never an idle worker
