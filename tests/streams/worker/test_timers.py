"""A worker timer whose job raises goes on at its next interval (a raising faust timer would
crash the whole worker)."""

from __future__ import annotations

import asyncio

import faust

from streams.worker.timers import safe_timer


def test_a_failing_job_runs_again_and_does_not_escape(caplog):
    app = faust.App("timers-test", broker="kafka://127.0.0.1:1", store="memory://")
    runs: list[int] = []

    @safe_timer(app, 0.01, "job failed")
    async def job() -> None:
        runs.append(1)
        raise RuntimeError("disk full")

    async def main() -> None:
        task = asyncio.create_task(app._app_tasks[-1]())
        await asyncio.sleep(0.2)
        assert not task.done()  # still looping: the failures did not escape
        task.cancel()

    asyncio.run(main())
    assert len(runs) >= 3
    assert "job failed; retrying at the next interval" in caplog.text
