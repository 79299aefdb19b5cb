"""Reads skipped engagement offsets straight from the broker (see streams/worker/offsets.py).

A plain aiokafka consumer without a group (assign + seek), like the item replica: it cannot
join or disturb the worker's group, and faust's own seek is not used because after it the
skipped events never came back and the partition stalled (docs/faust-rebalance-gap.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass
class FetchedMessage:
    """The fields of a faust Message that the batch handler and faust tables read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # seconds, as faust's Message has it


class FetchedEvent:
    """Stands in for a faust Event of a re-read record (acting_as needs `.message` and weakrefs)."""

    def __init__(self, message: FetchedMessage) -> None:
        self.message = message


class GapFetcher:
    """Fetches [start, stop) of one engagements partition; finds where a partition starts."""

    def __init__(self, k: KafkaSettings, topic: str, group_id: str, security: dict | None = None,
                 timeout_s: float = 30.0) -> None:
        self.k, self.topic, self.group_id = k, topic, group_id
        self._security = security or {}
        self.timeout_s = timeout_s

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=self.k.bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **self._security)

    async def fetch(self, partition: int, start: int, stop: int) -> list[FetchedEvent]:
        """Records with start <= offset < stop, in offset order; absent offsets are absent."""
        tp = TopicPartition(self.topic, partition)
        c = self._consumer()
        await c.start()
        out: list[FetchedEvent] = []
        try:
            c.assign([tp])
            c.seek(tp, start)
            deadline = time.monotonic() + self.timeout_s
            # position, not the last record, tells when we are done: the range may end in
            # offsets that hold no record (compaction, transaction markers)
            while await c.position(tp) < stop:
                if time.monotonic() > deadline:
                    logger.error("engagements %d: re-read of [%d, %d) timed out at %d",
                                 partition, start, stop, await c.position(tp))
                    break
                batch = await c.getmany(tp, timeout_ms=200, max_records=500)
                for rec in batch.get(tp, []):
                    if start <= rec.offset < stop:
                        out.append(FetchedEvent(FetchedMessage(
                            rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                            rec.timestamp / 1000.0)))
        finally:
            await c.stop()
        return out

    async def ends(self, partitions: list[int]) -> dict[int, int]:
        """partition -> log end offset now (the offset the next record will get)."""
        tps = [TopicPartition(self.topic, p) for p in partitions]
        c = self._consumer()
        await c.start()
        try:
            ends = await c.end_offsets(tps)
        finally:
            await c.stop()
        return {tp.partition: end for tp, end in ends.items()}

    async def baseline(self, partition: int) -> int | None:
        """Where the group's work on `partition` starts when this worker recorded nothing yet.

        The group's committed offset (a deployment from before the offsets table), else the
        log start; None when the broker could not tell (then the first event is trusted).
        """
        tp = TopicPartition(self.topic, partition)
        try:
            c = self._consumer()
            await c.start()
            try:
                start = (await c.beginning_offsets([tp]))[tp]
            finally:
                await c.stop()
            admin = AIOKafkaAdminClient(bootstrap_servers=self.k.bootstrap, **self._security)
            await admin.start()
            try:
                committed = await admin.list_consumer_group_offsets(self.group_id, partitions=[tp])
            finally:
                await admin.close()
        except Exception as e:  # any broker/client error: degrade to trusting the first event
            logger.warning("engagements %d: no baseline offset (%s); trusting the first event",
                           partition, e)
            return None
        meta = committed.get(tp)
        if meta is not None and meta.offset is not None and meta.offset >= 0:
            return max(meta.offset, start)
        return start
