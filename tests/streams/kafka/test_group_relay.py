"""Through the real broker: the items encoder's relay commits a batch only after its handler
returned, so a batch that failed is handled again by the partition's next owner (at-least-once),
and the group's progress says when everything up to given ends is relayed."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streams.kafka.clients import consume_all
from streams.kafka.group_progress import GroupProgress
from streams.kafka.group_relay import GroupRelay
from streams.kafka.settings import KafkaSettings

pytestmark = pytest.mark.broker


class _Boom(Exception):
    pass


async def _relay(relay: GroupRelay, handle, until=None) -> None:
    """Run the relay until the handler raises (re-raised) or `until()` turns true."""
    task = asyncio.create_task(relay.run(handle))
    try:
        for _ in range(600):
            if task.done():
                task.result()
                return
            if until is not None and await until():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the relay neither failed nor finished in 60 s")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_failed_batch_is_not_committed_and_its_next_owner_handles_it(
        kafka_broker, topic_factory, producer_factory):
    source, target = topic_factory("src"), topic_factory("dst")
    producer = producer_factory()
    for n in range(5):
        producer.send(source, key=f"k{n}".encode(), value=f"v{n}".encode())
    producer.flush()
    k = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind)
    group = f"relay-{uuid.uuid4().hex[:8]}"
    progress = GroupProgress(k, source, group)
    first: list[list[int]] = []
    second: list[list[int]] = []

    async def fail_at_v2() -> tuple[bool, bool, bool]:
        relay = GroupRelay(k, source, target, group, max_records=2)
        ends = await progress.ends()

        async def handle(records: list) -> None:
            first.append([r.offset for r in records])
            if any(r.value == b"v2" for r in records):
                raise _Boom("encoder down")  # nothing of this batch sent
            for r in records:
                await (await relay.send(r.key, r.value))

        with pytest.raises(_Boom):
            await _relay(relay, handle)
        failed_at = first[-1][0]
        return (await progress.reached({0: failed_at}), await progress.reached({0: failed_at + 1}),
                await progress.reached(ends))

    before, past, at_end = asyncio.run(fail_at_v2())
    assert before and not past and not at_end  # committed up to the failed batch, not into it

    async def resume() -> None:
        relay = GroupRelay(k, source, target, group, max_records=2)
        ends = await progress.ends()

        async def handle(records: list) -> None:
            second.append([r.offset for r in records])
            for r in records:
                await (await relay.send(r.key, r.value))

        await _relay(relay, handle, until=lambda: progress.reached(ends))

    asyncio.run(resume())
    assert second[0][0] == first[-1][0]  # the next owner starts at the failed batch
    got = [r.value for r in consume_all(kafka_broker.bootstrap, target, 6, timeout_s=10)]
    assert got == [b"v0", b"v1", b"v2", b"v3", b"v4"]  # each once
