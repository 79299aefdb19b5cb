"""Topics and tables of the worker (names carry the configured prefix)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import faust

from store.config import RocksMemory
from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass
class Topics:
    """Raw-bytes topics (we parse and validate ourselves, so bad records can be dead-lettered)."""

    engagements: faust.TopicT
    recommendations: faust.TopicT
    deadletter: faust.TopicT


@dataclass
class Tables:
    """user_id (bytes) -> encoded UserState; engagements partition (ascii) -> next expected offset.

    The offsets table finds redeliveries and gaps (one user's events all live on one partition,
    so a per-partition offset covers every user of it); the user's state decides whether a
    redelivery is dropped (streams/worker/batch.py).
    """

    states: faust.Table
    offsets: faust.Table


def declare_topics(app: faust.App, k: KafkaSettings) -> Topics:
    def raw(name: str) -> faust.TopicT:
        return app.topic(k.topic(name), key_serializer="raw", value_serializer="raw",
                         partitions=k.partitions)

    return Topics(raw("engagements"), raw("recommendations"), raw("deadletter"))


def declare_tables(app: faust.App, k: KafkaSettings, memory: RocksMemory | None = None) -> Tables:
    """Changelog-backed rocksdb tables, co-partitioned with engagements (key = user_id); their
    changelogs carry the decided min.insync.replicas (the app gives their replication)."""
    mem = memory or RocksMemory()
    # faust opens a RocksDB per table partition; its defaults (64 MiB x 3 memtables, a 2 GiB
    # block cache, a 500 MiB compressed one) leave RSS unbounded in practice
    options = {"write_buffer_size": mem.memtable_bytes, "max_write_buffer_number": mem.memtables,
               "block_cache_size": max(1, mem.block_cache_bytes),
               "block_cache_compressed_size": max(1, mem.block_cache_bytes // 4)}

    def table(name: str) -> faust.Table:
        return app.Table(name, key_type=bytes, value_type=bytes,  # both raw bytes
                         partitions=k.partitions, options=dict(options),
                         extra_topic_configs=k.topic_configs())

    return Tables(table("user-state"), table("partition-offset"))
