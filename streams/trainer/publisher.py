"""Parameter sync: the rows the publish rule selects (streams/trainer/publish_rule.py) among
those touched since the last sync go to the compacted `parameters` topic: key b"item/<id>",
value the checksummed served-row record (store/id_row.py, format 2: the vector without the
optimizer slot, which stays in the trainer's snapshot); None for a removed row.

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
from streams.trainer.publish_rule import PublishRule

logger = logging.getLogger(__name__)


class Publisher:
    """Sends syncs of one IdMemory; `version` is the sync version rows are stamped with."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, memory: IdMemory, high_water: Path,
                 rule: PublishRule) -> None:
        self.producer, self.topic, self.memory, self.high_water = producer, topic, memory, high_water
        self.rule = rule
        self.syncs, self.rows_sent, self.tombstones = 0, 0, 0
        self.bytes_sent, self.held_back = 0, 0  # totals: key + value bytes; negatives not sent
        self.last = {"bytes": 0, "rows": 0, "tombstones": 0, "held_back": 0, "touched": 0}  # the latest sync

    def resume_version(self, snapshot_version: int) -> None:
        """Continue above both the snapshot's version and any version already published; the
        first sync is version 1 (0 means the checkpoint's rows on a worker)."""
        published = int(self.high_water.read_text()) if self.high_water.exists() else 0
        self.memory.version = max(snapshot_version, published + 1, 1)

    def records(self) -> list[tuple[bytes, bytes | None]]:
        """(key, value) of every row the rule selects, read under the caller's lock; value None =
        removed."""
        rows = {}

        def vector(item_id: str):
            rows[item_id] = self.memory.get_row(item_id)
            return None if rows[item_id] is None else rows[item_id].vector

        touched = self.memory.drain_touched()
        selection = self.rule.select(touched, vector)
        out = []
        for item_id in selection.publish:
            row = rows[item_id]
            value = None if row is None else encode_row(self.memory.table, item_id, row, served=True)
            out.append((row_key(self.memory.table, item_id), value))
        self.last.update(held_back=len(selection.held_back), touched=len(touched))
        self.held_back += len(selection.held_back)
        return out

    async def send(self, records: list[tuple[bytes, bytes | None]], version: int) -> None:
        """Publish one sync and wait until the broker has every record."""
        size = sum(len(k) + len(v or b"") for k, v in records)
        dead = sum(v is None for _, v in records)
        self.last.update(bytes=size, rows=len(records) - dead, tombstones=dead)
        if not records:
            return
        write_atomic(self.high_water, str(version))
        futures = [await self.producer.send(self.topic, key=k, value=v) for k, v in records]
        for f in futures:
            await f
        self.syncs += 1
        self.rows_sent += len(records) - dead
        self.tombstones += dead
        self.bytes_sent += size
        logger.info("sync v%d: %d rows, %d tombstones, %d bytes; %d negatives held back", version,
                    len(records) - dead, dead, size, self.last["held_back"])
