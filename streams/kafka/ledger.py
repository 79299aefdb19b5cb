"""Which records the `deadletter` topic already holds, so a replica dead-letters a bad record
once per deployment instead of once per worker start.

Every worker reads every `items` and `parameters` record, and the parameters replica re-reads
its topic from the start on every start: without a ledger each restart would dead-letter the
same bad records again. The ledger reads `deadletter` once, lazily, when a replica first meets
a bad record it read while catching up (one that was in its topic before this worker
started), and remembers (source topic, partition, offset) of what it holds. Workers that meet
a bad record live, at the same moment, may each send one: consumers dedupe by source.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)

Source = tuple[str, int, int]  # source topic, partition, offset


class DeadLetterLedger:
    """The sources the dead-letter topic holds (read once, on first use) plus what this
    worker has sent since."""

    def __init__(self, k: KafkaSettings, topic: str, read_timeout_s: float = 60.0) -> None:
        self.k, self.topic, self.read_timeout_s = k, topic, read_timeout_s
        self._held: set[Source] | None = None
        self._lock = asyncio.Lock()

    async def holds(self, source: Source) -> bool:
        """Whether a dead letter for `source` is already in the topic (reads it the first time)."""
        async with self._lock:
            if self._held is None:
                self._held = await self._read()
        return source in self._held

    def add(self, source: Source) -> None:
        """A dead letter this worker sent (kept only once the topic has been read)."""
        if self._held is not None:
            self._held.add(source)

    async def _read(self) -> set[Source]:
        c = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                             **self.k.aiokafka_kwargs())
        await c.start()
        try:
            parts: set[int] = set()
            for _ in range(20):  # metadata of the topic can take a moment after start
                parts = c.partitions_for_topic(self.topic) or set()
                if parts:
                    break
                await asyncio.sleep(0.1)
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            c.assign(tps)
            ends = await c.end_offsets(tps) if tps else {}
            held = await _collect(c, {tp: end for tp, end in ends.items() if end > 0},
                                  time.monotonic() + self.read_timeout_s)
        finally:
            await c.stop()
        logger.info("dead-letter ledger: %d replica sources already dead-lettered", len(held))
        return held


async def _collect(c: AIOKafkaConsumer, ends: dict[TopicPartition, int], deadline: float) -> set[Source]:
    held: set[Source] = set()
    for tp in ends:
        await c.seek_to_beginning(tp)
    done = {tp for tp in ends if await c.position(tp) >= ends[tp]}
    while len(done) < len(ends) and time.monotonic() < deadline:
        for tp, records in (await c.getmany(timeout_ms=200)).items():
            held.update(s for s in map(_source, records) if s is not None)
            if records and records[-1].offset + 1 >= ends.get(tp, 0):
                done.add(tp)
    return held


def _source(record) -> Source | None:
    try:
        d = json.loads(record.value)
        return str(d["source_topic"]), int(d["partition"]), int(d["offset"])
    except (TypeError, ValueError, KeyError):
        return None
