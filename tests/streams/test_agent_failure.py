"""A failing engagements batch takes the worker down (non-zero exit), never leaves it idle."""

from __future__ import annotations

import asyncio

import faust

from streams.worker import agents
from streams.worker.config import WorkerSettings
from streams.worker.runtime import FATAL_EXIT_CODE, Runtime
from streams.worker.topics import declare_tables, declare_topics


def test_a_batch_failure_exits_the_worker_with_the_fatal_code(tmp_path, monkeypatch):
    settings = WorkerSettings(data_dir=tmp_path, batch_size=2, batch_within_s=0.05)
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
