"""How far the worker group has worked through a topic: its committed offsets against end
offsets taken earlier. The items encoder group commits `items` only after the vectors are delivered, so
"committed past the ends seen when an engagement met an unknown item" means every item sent
before that engagement has its vector in `item-vectors`.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)


class GroupProgress:
    """End offsets of `topic` now, and whether `group_id` has committed up to given ends."""

    def __init__(self, k: KafkaSettings, topic: str, group_id: str, security: dict | None = None) -> None:
        self.k, self.topic, self.group_id = k, topic, group_id
        self._security = security or {}

    async def ends(self) -> dict[int, int]:
        """partition -> end offset now (partitions of an unknown topic: none)."""
        c = AIOKafkaConsumer(bootstrap_servers=self.k.bootstrap, group_id=None,
                             enable_auto_commit=False, **self._security)
        await c.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(c.partitions_for_topic(self.topic) or ())]
            ends = await c.end_offsets(tps) if tps else {}
            starts = await c.beginning_offsets(tps) if tps else {}
        finally:
            await c.stop()
        # an empty partition (nothing or all compacted away) needs no commit to be reached
        return {tp.partition: end for tp, end in ends.items() if end > starts.get(tp, 0)}

    async def reached(self, ends: dict[int, int]) -> bool:
        """The group's committed offset is at or past `ends` on every partition."""
        if not ends:
            return True
        tps = [TopicPartition(self.topic, p) for p in ends]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.k.bootstrap, **self._security)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        finally:
            await admin.close()
        for tp in tps:
            meta = committed.get(tp)
            if meta is None or meta.offset is None or meta.offset < ends[tp.partition]:
                return False
        return True
