"""Per-worker replica of a compacted topic: every worker reads every partition in full.

A plain aiokafka consumer without a group (manual assignment): no group join, nothing to
rebalance, works the same on Kafka and tansu. Two replicas run on a worker:
- `items`: positions are kept with the local item store (ItemStore offsets), so a restart with
  the same data dir resumes where it stopped; an empty data dir reads the topic from the start.
- `parameters` (hybrid checkpoints only): always from the beginning, since the ID memory it
  feeds lives in memory and starts from the checkpoint on every start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)

Apply = Callable[[int, list], Awaitable[None]]  # (partition, records) -> None
Heads = Callable[[list], None]  # the last record of each non-empty partition, at start
HEAD_WAIT_S = 10.0  # longest wait for the last records at start (then: no heads)


async def assign_at(c: AIOKafkaConsumer, topic: str, parts: set[int],
                    positions: dict[int, int]) -> list[TopicPartition]:
    """Assign every partition of topic to c, each at its position (none: the beginning)."""
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    c.assign(tps)
    for tp in tps:
        if tp.partition in positions:
            c.seek(tp, positions[tp.partition])
        else:
            await c.seek_to_beginning(tp)
    return tps


class TopicReplica:
    """Consumes all of `topic`; apply() gets each partition's records in offset order.

    `offsets` (partition -> next offset) says where to resume; a partition not in it is read
    from the beginning. `name` only labels the logs ("items", "parameters").
    """

    def __init__(self, k: KafkaSettings, topic: str, apply: Apply, offsets: dict[int, int],
                 security: dict | None = None, name: str = "items", heads: Heads | None = None) -> None:
        self.k, self.topic, self.apply, self.name, self.heads = k, topic, apply, name, heads
        self.positions = dict(offsets)  # partition -> next offset applied
        self._security = security or {}
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()
        self.start_ends: dict[int, int] = {}  # end offsets seen at start: the catch-up target
        self.caught_up = asyncio.Event()  # set once every record there at start is applied

    async def start(self) -> None:
        c, parts = await self._connect()
        tps = await assign_at(c, self.topic, parts, self.positions)
        self.start_ends = {tp.partition: end for tp, end in (await c.end_offsets(tps)).items()}
        if self.heads is not None:
            self.heads(await self._last_records(c, tps))
            await assign_at(c, self.topic, parts, self.positions)
        self._consumer = c
        self._ready.set()
        logger.info("%s replica on %s, %d partitions, from %s to %s", self.name, self.topic,
                    len(tps), self.positions, self.start_ends)
        self._check_caught_up()

    async def _connect(self) -> tuple[AIOKafkaConsumer, set[int]]:
        """A started consumer and the topic's partitions. A client keeps the topic list it
        bootstrapped with, so while the topic is missing a fresh client is tried each second
        (warning every 10 s): a replica assigned nothing would look caught up and apply nothing."""
        t0 = warned = time.monotonic()
        while True:
            c = AIOKafkaConsumer(bootstrap_servers=self.k.bootstrap, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 **self._security)
            await c.start()
            for _ in range(10):  # metadata of a just-created topic can lag a little
                parts = c.partitions_for_topic(self.topic)
                if parts:
                    return c, parts
                await asyncio.sleep(0.1)
            await c.stop()
            if time.monotonic() - warned > 10:
                warned = time.monotonic()
                logger.warning("%s replica: topic %s has no partitions after %.0fs; still "
                               "waiting", self.name, self.topic, warned - t0)

    async def _last_records(self, c: AIOKafkaConsumer, tps: list[TopicPartition]) -> list:
        """The record at end - 1 of every non-empty partition (what was newest at start)."""
        want = {tp for tp in tps if self.start_ends.get(tp.partition, 0) > 0}
        for tp in want:
            c.seek(tp, self.start_ends[tp.partition] - 1)
        got: dict[TopicPartition, object] = {}
        deadline = time.monotonic() + HEAD_WAIT_S
        while want - got.keys() and time.monotonic() < deadline:
            for tp, records in (await c.getmany(timeout_ms=200)).items():
                if tp in want and records:
                    got.setdefault(tp, records[0])
        return list(got.values())

    def behind(self) -> int:
        """Records between the applied positions and the end offsets seen at start."""
        return sum(max(0, end - self.positions.get(p, 0)) for p, end in self.start_ends.items())

    def _check_caught_up(self) -> None:
        if not self.caught_up.is_set() and self._ready.is_set() and self.behind() == 0:
            logger.info("%s replica caught up with %s", self.name, self.start_ends)
            self.caught_up.set()

    async def run(self) -> None:
        """Start, then apply batches until cancelled."""
        await self.start()
        assert self._consumer is not None
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=512)
                for tp, records in batches.items():
                    await self.apply(tp.partition, records)
                    self.positions[tp.partition] = records[-1].offset + 1
                self._check_caught_up()
        finally:
            await self._consumer.stop()

    async def catch_up(self, timeout_s: float) -> bool:
        """Wait until everything in the topic now has been applied; False on timeout."""
        deadline = time.monotonic() + timeout_s
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        while time.monotonic() < deadline:
            if all(self.positions.get(tp.partition, 0) >= end for tp, end in ends.items()):
                return True
            await asyncio.sleep(0.05)
        return False
