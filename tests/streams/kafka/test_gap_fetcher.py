"""GapFetcher against the real broker: exact ranges, and where an unknown partition starts."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streams.kafka.gap_fetcher import GapFetcher
from streams.kafka.settings import KafkaSettings

pytestmark = pytest.mark.broker


def _fetcher(kafka_broker, topic: str, group: str) -> GapFetcher:
    k = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind)
    return GapFetcher(k, topic, group, timeout_s=10.0)


def test_fetch_returns_exactly_the_range_in_offset_order(kafka_broker, topic_factory,
                                                         producer_factory):
    topic = topic_factory("gap", partitions=2)
    producer = producer_factory()
    for i in range(10):
        producer.send(topic, key=b"k", value=str(i).encode(), partition=1)
    producer.flush()
    f = _fetcher(kafka_broker, topic, "g-" + uuid.uuid4().hex[:8])
    got = asyncio.run(f.fetch(1, 3, 7))
    assert [(e.message.partition, e.message.offset, e.message.value) for e in got] == \
        [(1, o, str(o).encode()) for o in range(3, 7)]
    assert all(e.message.topic == topic and e.message.key == b"k" for e in got)
    assert [e.message.offset for e in asyncio.run(f.fetch(1, 8, 10))] == [8, 9]


def test_baseline_is_the_committed_offset_else_the_log_start(kafka_broker, topic_factory,
                                                             producer_factory):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    topic = topic_factory("gap", partitions=1)
    producer = producer_factory()
    for i in range(6):
        producer.send(topic, value=str(i).encode(), partition=0)
    producer.flush()
    group = "g-" + uuid.uuid4().hex[:8]
    f = _fetcher(kafka_broker, topic, group)
    assert asyncio.run(f.baseline(0)) == 0
    c = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                      enable_auto_commit=False)
    try:
        c.assign([TopicPartition(topic, 0)])
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "", -1)})
    finally:
        c.close()
    assert asyncio.run(f.baseline(0)) == 4
