"""Consume a topic as one consumer group and relay what a handler makes of each batch to
another topic, committing the batch only once the handler returned (its sends delivered).

A plain aiokafka group consumer, not a faust agent: faust drops blocks of records it fetched
during start-up rebalances and commits past them (docs/faust-rebalance-gap.md). A faust items
agent tried here left the last 8 records of each partition unpublished in the demo (16 of
1,682 items), and `items` has no offsets table to repair such gaps with. Here a record is
either handled and committed, or redelivered to whichever member owns its partition next
(at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)

Handle = Callable[[list], Awaitable[None]]  # one partition's records, in offset order


class GroupRelay:
    """Reads `source` in consumer group `group_id` (each member its own partitions) and gives
    `send` for writing `target`, keyed, so a key keeps its partition and its order."""

    def __init__(self, k: KafkaSettings, source: str, target: str, group_id: str,
                 max_records: int) -> None:
        self.k, self.source, self.target, self.group_id = k, source, target, group_id
        self.max_records = max_records
        self._producer: AIOKafkaProducer | None = None
        self.commits_lost = 0  # batches whose partition moved away before their commit

    async def send(self, key: bytes | None, value: bytes | None) -> asyncio.Future:
        """Send to `target` (the default partitioner: murmur2 of the key, as the source's
        producers use); returns the delivery future."""
        assert self._producer is not None, "send() before run()"
        return await self._producer.send(self.target, value=value, key=key)

    async def run(self, handle: Handle) -> None:
        """Handle every batch of the partitions this member is given, until cancelled."""
        self._producer = AIOKafkaProducer(**self.k.aiokafka_producer_kwargs())
        consumer = AIOKafkaConsumer(self.source, group_id=self.group_id, enable_auto_commit=False,
                                    auto_offset_reset="earliest", **self.k.aiokafka_kwargs(),
                                    **self.k.client.aiokafka_consumer_kwargs())
        await self._producer.start()
        await consumer.start()
        logger.info("relay %s -> %s in group %s", self.source, self.target, self.group_id)
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=self.max_records)
                for tp, records in batches.items():
                    await handle(records)
                    await self._commit(consumer, tp, records[-1].offset + 1)
        finally:
            await consumer.stop()
            await self._producer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as e:
            # a rebalance moved the partition: its new owner re-reads from the last commit
            self.commits_lost += 1
            logger.info("%s %d: commit at %d lost to a rebalance (%s); re-read by its new owner",
                        self.source, tp.partition, offset, e)
