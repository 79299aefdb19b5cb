"""Parameter sync: the rows touched since the last sync go to the compacted `parameters` topic
(key b"item/<id>", value the checksummed IdRow record; None for a removed row).

Versions only grow, across restarts too: the version about to be published is written to a
high-water file before its records are sent, and a restarted trainer continues above it, so a
row it publishes again after replaying the log is never older than what workers already hold.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiokafka import AIOKafkaProducer

from durable import write_atomic
from store import IdMemory, encode_row, row_key

logger = logging.getLogger(__name__)


class Publisher:
    """Sends syncs of one IdMemory; `version` is the sync version rows are stamped with."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, memory: IdMemory, high_water: Path):
        self.producer, self.topic, self.memory, self.high_water = producer, topic, memory, high_water
        self.syncs, self.rows_sent, self.tombstones = 0, 0, 0

    def resume_version(self, snapshot_version: int) -> None:
        """Continue above both the snapshot's version and any version already published; the
        first sync is version 1 (0 means the checkpoint's rows on a worker)."""
        published = int(self.high_water.read_text()) if self.high_water.exists() else 0
        self.memory.version = max(snapshot_version, published + 1, 1)

    def records(self) -> list[tuple[bytes, bytes | None]]:
        """(key, value) of every touched row, read under the caller's lock; value None = removed."""
        out = []
        for item_id in self.memory.drain_touched():
            row = self.memory.get_row(item_id)
            value = None if row is None else encode_row(self.memory.table, item_id, row)
            out.append((row_key(self.memory.table, item_id), value))
        return out

    async def send(self, records: list[tuple[bytes, bytes | None]], version: int) -> None:
        """Publish one sync and wait until the broker has every record."""
        if not records:
            return
        write_atomic(self.high_water, str(version))
        futures = [await self.producer.send(self.topic, key=k, value=v) for k, v in records]
        for f in futures:
            await f
        self.syncs += 1
        self.rows_sent += sum(v is not None for _, v in records)
        self.tombstones += sum(v is None for _, v in records)
        logger.info("sync v%d: %d rows, %d tombstones", version, len(records),
                    sum(v is None for _, v in records))
