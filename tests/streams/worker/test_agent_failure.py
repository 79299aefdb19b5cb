"""A failing engagements batch takes the worker down (non-zero exit), never leaves it idle."""

from __future__ import annotations

import asyncio

import faust

from streams.kafka.settings import KafkaSettings
from streams.worker import agents
from streams.worker.config import WorkerSettings
from streams.worker.runtime import FATAL_EXIT_CODE, Runtime
from streams.worker.topics import declare_tables, declare_topics


def test_a_batch_failure_exits_the_worker_with_the_fatal_code(tmp_path, monkeypatch):
    settings = WorkerSettings(data_dir=tmp_path, batch_size=2, batch_within_s=0.05,
                              kafka=KafkaSettings().decided(brokers=1))
    app = faust.App("fail-test", broker="kafka://127.0.0.1:1", store="memory://")
    topics, tables = declare_topics(app, settings.kafka), declare_tables(app, settings.kafka)
    codes: list[int] = []
    runtime = Runtime(settings, engine=None, exit=codes.append)

    async def boom(*args, **kwargs):
        raise RuntimeError("send failed for good")

    monkeypatch.setattr(agents, "handle_batch", boom)
    agents.register_agents(app, topics, tables, runtime)

    async def drive() -> None:
        async with app.agents["engagements"].test_context() as agent:
            await agent.put(b"{}", key=b"u1")
            await asyncio.sleep(0.3)

    asyncio.run(drive())
    assert codes == [FATAL_EXIT_CODE]


def test_shutdown_cancellation_is_not_a_failure(tmp_path):
    codes: list[int] = []
    runtime = Runtime(WorkerSettings(data_dir=tmp_path), engine=None, exit=codes.append)
    runtime.fail(asyncio.CancelledError())
    assert codes == []


def test_faust_private_current_event_is_still_what_table_keys_follow():
    """streams/worker/batch.py acting_as sets faust's private `_current_event` (no public API
    picks the partition a table write goes to after stream.take); fail if faust changes it."""
    import contextvars
    import weakref

    from faust import streams as faust_streams
    from faust.streams import current_event

    from streams.worker.batch import acting_as

    assert isinstance(faust_streams._current_event, contextvars.ContextVar)

    class Ev:
        pass

    ev = Ev()
    with acting_as(ev):
        assert current_event() is ev
    assert current_event() is not ev
    assert weakref.ref(ev)() is ev


def test_a_state_that_does_not_decode_starts_the_user_afresh(tmp_path, engine_factory, events):
    runtime = Runtime(WorkerSettings(data_dir=tmp_path), engine=engine_factory())
    e = events[0]
    results, changed = runtime._process([e], [None], {e["user_id"]: b"garbage"})
    assert results[0].recommendation is not None and e["user_id"] in changed
    assert runtime.metrics.state_errors._value.get() == 1
