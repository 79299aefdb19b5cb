"""Serve only when caught up: the item replica knows the end offsets it saw at start, and the
worker serves no engagement before the replica has applied everything up to them."""

from __future__ import annotations

import asyncio

import pytest

from streams.kafka.replica import TopicReplica
from streams.kafka.settings import KafkaSettings
from streams.worker.config import WorkerSettings
from streams.worker.runtime import ReplicaLagError, Runtime


@pytest.mark.broker
def test_replica_is_caught_up_only_after_everything_there_at_start_is_applied(
        kafka_broker, topic_factory, producer_factory):
    topic = topic_factory("items", partitions=2)
    producer = producer_factory()
    for i in range(40):
        producer.send(topic, key=f"i{i}".encode(), value=b"{}", partition=i % 2)
    producer.flush()
    k = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind)
    applied: list[int] = []
    seen_behind: list[int] = []

    async def slow_apply(partition: int, records: list) -> None:
        seen_behind.append(rep.behind())
        assert not rep.caught_up.is_set()
        await asyncio.sleep(0.05)
        applied.extend(r.offset for r in records)

    rep = TopicReplica(k, topic, slow_apply, {})

    async def drive() -> float:
        task = asyncio.create_task(rep.run())
        await asyncio.wait_for(rep.caught_up.wait(), 30)
        task.cancel()
        return rep.behind()

    assert asyncio.run(drive()) == 0
    assert rep.start_ends == {0: 20, 1: 20} and len(applied) == 40
    assert seen_behind[0] == 40


class _Replica:
    def __init__(self) -> None:
        self.caught_up = asyncio.Event()

    def behind(self) -> int:
        return 0 if self.caught_up.is_set() else 7


def test_serving_waits_for_the_replica():
    async def drive() -> tuple[bool, float]:
        runtime = Runtime(WorkerSettings(), engine=None)
        runtime.replicator = _Replica()
        waiter = asyncio.create_task(runtime.wait_for_replicas())
        await asyncio.sleep(0.3)
        early = waiter.done()
        runtime.replicator.caught_up.set()
        await asyncio.wait_for(waiter, 5)
        return early, runtime.replica_wait_s

    early, waited = asyncio.run(drive())
    assert not early and waited >= 0.3


def test_a_replica_that_never_catches_up_fails_the_worker_after_the_bound():
    async def drive() -> None:
        runtime = Runtime(WorkerSettings(replica_wait_s=0.01), engine=None)
        runtime.replicator = _Replica()
        await runtime.wait_for_replicas()

    with pytest.raises(ReplicaLagError, match="7 records behind"):
        asyncio.run(drive())


@pytest.mark.broker
def test_replica_waits_for_a_topic_that_appears_late(kafka_broker, producer_factory):
    """A replica that started before its topic existed used to give up after 10 s, assign
    nothing, look caught up and never apply an item."""
    import uuid

    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"late-{uuid.uuid4().hex[:8]}"
    k = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind)
    applied: list[int] = []

    async def apply(partition: int, records: list) -> None:
        applied.extend(r.offset for r in records)

    rep = TopicReplica(k, topic, apply, {})

    async def drive() -> None:
        task = asyncio.create_task(rep.run())
        await asyncio.sleep(11)
        assert not rep.caught_up.is_set()
        admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        admin.create_topics([NewTopic(topic, 1, 1)])
        admin.close()
        producer = producer_factory()
        for i in range(5):
            producer.send(topic, key=b"k", value=str(i).encode())
        producer.flush()
        for _ in range(100):
            if len(applied) == 5:
                break
            await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(drive())
    assert applied == [0, 1, 2, 3, 4]
