"""`threadrec trainer`: consume engagements, learn ID rows, publish syncs, snapshot.

Guarantee: every engagement of the log is learned exactly once into the trainer's table. The
trainer learns whole blocks only (`learn_block` offsets of a partition, one step each), released
once the partition has been read past a block's end, so the steps are cut by the log, not by the
polls. The table, the histories and the offsets they reflect (block boundaries) are snapshotted
together; after a kill -9 the trainer restores the last snapshot and re-learns from its offsets,
so the table equals what an uninterrupted trainer computes from the same log.
Syncs are at least once: rows learned after the snapshot may be published twice, the second
time with a higher version. The group's committed offsets mirror the snapshot's (for lag
monitoring); an empty data dir re-learns the whole retained log on top of the checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections import deque

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from durable import write_atomic
from model.records import read_jsonl
from store import IdMemory, KVStore
from store.rocksdict_backend import RocksDictKV
from streams.errors import ThreadrecError
from streams.kafka.messages import InvalidMessage, check_key, parse_engagement
from streams.kafka.replica import assign_at
from streams.trainer import snapshot
from streams.trainer.config import TrainerSettings
from streams.trainer.histories import Histories
from streams.trainer.learner import CheckpointHalf, OnlineLearner
from streams.trainer.publisher import Publisher

logger = logging.getLogger(__name__)


class Trainer:
    """The trainer process around one OnlineLearner."""

    def __init__(self, settings: TrainerSettings) -> None:
        if settings.checkpoint is None:
            raise ThreadrecError("trainer: --checkpoint (a hybrid checkpoint) is required")
        self.s, self.root = settings, settings.data_dir
        self.topic = settings.kafka.topic("engagements")
        self.pending: dict[int, deque] = {}  # partition -> records fetched, not yet learned
        self.positions: dict[int, int] = {}  # partition -> next offset to learn
        self.read: dict[int, int] = {}  # partition -> next offset to fetch
        self.skipped = 0  # invalid engagements (the workers dead-letter them)
        self.users_expired = 0  # user histories dropped by the TTL sweep since this process started
        self.max_ts, self.snapshots = 0.0, 0
        self.rows: RocksDictKV  # rows and histories (set by _open)
        self.learner, self.meta = self._open()
        self.positions = dict(self.meta.offsets)
        self.last_sync = self.last_snapshot = time.monotonic()
        self.sync_lags: list[float] = []

    def _open(self) -> tuple[OnlineLearner, snapshot.SnapshotMeta]:
        """Restore the last snapshot, or start from the checkpoint (and the history file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        snap = snapshot.current(self.root / "snapshots")
        half = CheckpointHalf.load(self.s.checkpoint, self.s)

        def histories_in(kv: KVStore) -> Histories:
            return Histories(kv, half.tower.opts.max_len, self.s.impressions_kept)

        if snap is None:  # rows written before a first snapshot reflect nothing: start clean
            shutil.rmtree(self.root / "rows", ignore_errors=True)
            self.rows = RocksDictKV(self.root / "rows", point_reads=True)  # rows: random point reads
            memory, histories = IdMemory(self.rows, half.config), histories_in(self.rows)
            meta = snapshot.SnapshotMeta()
            half.write_rows(memory)
        else:
            memory, histories, meta = snapshot.restore(snap, self.root / "rows", half.config, histories_in)
            self.rows = memory.kv  # the store restore opened
            logger.info("trainer restored %s: %d rows, %d users, offsets %s", snap.name, len(memory),
                        len(histories), meta.offsets)
        learner = OnlineLearner(memory, half.tower, histories, self.s, half.fusion)
        learner.stats.__dict__.update(meta.stats)
        learner.publish_rule.publish_all = snap is not None  # the rule's references died with the process
        if snap is None:
            self._load_history(learner)
        return learner, meta

    def _load_history(self, learner: OnlineLearner) -> None:
        if self.s.history_file is None:
            return
        n = 0
        for e in read_jsonl(self.s.history_file):
            h = learner.histories.get(str(e["user_id"]))
            (h.impressions if e.get("kind") == "impression" else h.items).append(str(e["item_id"]))
            h.last_seen = max(h.last_seen, float(e.get("ts", 0.0)))
            learner.histories.put(str(e["user_id"]), h)
            n += 1
        logger.info("trainer: %d history engagements from %s", n, self.s.history_file)

    async def run(self, stop: asyncio.Event) -> None:
        """Learn until stop is set; then a last sync and snapshot."""
        k = self.s.kafka
        consumer = await self._consumer()
        producer = AIOKafkaProducer(**k.aiokafka_producer_kwargs())
        await producer.start()
        gate = FollowGate(k, self.s.follow_group, self.topic) if self.s.follow_group else None
        self.publisher = Publisher(producer, k.topic("parameters"), self.learner.memory,
                                   self.root / "published-version", self.learner.publish_rule)
        self.publisher.resume_version(self.meta.version)
        try:
            if gate:
                await gate.start()
            while not stop.is_set():
                await self._round(consumer, gate, stop)
            await self._sync()
            await self._snapshot(consumer)
        finally:
            if gate:
                await gate.stop()
            await producer.stop()
            await consumer.stop()
            self.learner.memory.close()

    async def _round(self, consumer: AIOKafkaConsumer, gate: FollowGate | None, stop: asyncio.Event) -> None:
        fetched = await consumer.getmany(timeout_ms=200, max_records=self.s.batch_size)
        for tp, records in fetched.items():
            self.pending.setdefault(tp.partition, deque()).extend(records)
            if records:
                self.read[tp.partition] = records[-1].offset + 1
        ready = self._release(await gate.limits() if gate else None)
        await self._learn(ready)
        if self._sync_due():
            await self._sync()
        if time.monotonic() - self.last_snapshot >= self.s.snapshot_every_s:
            await self._snapshot(consumer)
        self._write_stats(consumer)

    async def _learn(self, ready: list[tuple[dict, int, int]]) -> None:
        """Learn block by block and sync between them when due: a large fetch (a backlog) must not
        push a sync past its interval, in either clock."""
        for part in self._blocks(ready):
            await asyncio.to_thread(self.learner.learn_all, part)
            self.max_ts = max(self.max_ts, max(event["ts"] for event, _, _ in part))
            if self._sync_due():
                await self._sync()

    def _blocks(self, ready: list[tuple[dict, int, int]]) -> list[list[tuple[dict, int, int]]]:
        """ready cut into runs of one block (partition, offset // learn_block) each."""
        out: list[list[tuple[dict, int, int]]] = []
        key = None
        for item in ready:
            at = (item[1], item[2] // self.s.learn_block)
            if at != key:
                out.append([])
                key = at
            out[-1].append(item)
        return out

    def _release(self, limits: dict[int, int] | None) -> list[tuple[dict, int, int]]:
        """Pending records of whole blocks (those read up to their end, and allowed by the gate),
        validated, in offset order per partition: the step bounds come from the log, not from
        where a poll happened to stop."""
        out = []
        for p, q in self.pending.items():
            end = self.read.get(p, 0) if limits is None else min(self.read.get(p, 0), limits.get(p, 0))
            stop_at = end // self.s.learn_block * self.s.learn_block
            while q and q[0].offset < stop_at:
                rec = q.popleft()
                self.positions[p] = rec.offset + 1
                event = self._parse(rec)
                if event is not None:
                    out.append((event, p, rec.offset))
        if out and self.learner.stats.engagements == 0 and self.s.ttl_s > 0:
            self.learner.stamp_unseen(out[0][0]["ts"])
        return out

    def _parse(self, rec) -> dict | None:
        try:
            event = parse_engagement(rec.value, self.s.limits)
            check_key(event, rec.key)
            return event
        except InvalidMessage:
            self.skipped += 1
            return None

    def _sync_due(self) -> bool:
        if self.s.sync_clock == "event":
            return self.max_ts - self.meta.sync_event_ts >= self.s.sync_every_s
        return time.monotonic() - self.last_sync >= self.s.sync_every_s

    async def _sync(self) -> None:
        """Expire idle rows, then publish every row touched since the last sync."""
        memory = self.learner.memory
        if self.s.ttl_s > 0 and self.max_ts:
            self.learner.expire(self.max_ts)
        if self.s.user_ttl_s > 0 and self.max_ts:
            self.users_expired += self.learner.histories.expire(self.max_ts - self.s.user_ttl_s)
        version = memory.version
        records = self.publisher.records()
        if records:
            memory.version = version + 1
        await self.publisher.send(records, version)
        self.last_sync, self.meta.sync_event_ts = time.monotonic(), self.max_ts

    async def _snapshot(self, consumer: AIOKafkaConsumer) -> None:
        memory = self.learner.memory
        self.meta.offsets, self.meta.version = dict(self.positions), memory.version
        self.meta.stats = {k: v for k, v in self.learner.stats.__dict__.items()}
        await asyncio.to_thread(snapshot.write, self.root / "snapshots", self.rows, memory, self.meta)
        self.snapshots += 1
        self.last_snapshot = time.monotonic()
        if self.positions:  # mirror for lag monitoring; the snapshot stays the source of truth
            await consumer.commit({TopicPartition(self.topic, p): o for p, o in self.positions.items()})

    async def _consumer(self) -> AIOKafkaConsumer:
        """A consumer of every engagements partition at the snapshot's offsets (or the start)."""
        k = self.s.kafka
        c = AIOKafkaConsumer(group_id=self.s.group_id, enable_auto_commit=False,
                             auto_offset_reset="earliest", **k.aiokafka_kwargs())
        await c.start()
        await assign_at(c, self.topic, await _partitions(c, self.topic), self.positions)
        return c

    def stats(self) -> dict:
        """The counters the stats file shows."""
        pub = self.publisher
        return {"positions": self.positions, "read": self.read, "version": self.learner.memory.version,
                "rows": len(self.learner.memory), "skipped_invalid": self.skipped,
                "users": len(self.learner.histories), "users_expired": self.users_expired,
                "syncs": pub.syncs, "rows_sent": pub.rows_sent, "tombstones": pub.tombstones,
                "sync_bytes_sent": pub.bytes_sent, "held_back": pub.held_back,
                "last_sync_bytes": pub.last["bytes"], "last_sync_rows": pub.last["rows"],
                "last_sync_tombstones": pub.last["tombstones"], "last_sync_held_back": pub.last["held_back"],
                "last_sync_touched": pub.last["touched"],
                "snapshots": self.snapshots, "snapshot_positions": self.meta.offsets,
                "max_event_ts": self.max_ts,
                **self.learner.stats.as_dict(), "pid": os.getpid(), "written_ts": time.time()}

    def _write_stats(self, consumer: AIOKafkaConsumer) -> None:
        path = self.s.stats_file
        if path is None or time.monotonic() - getattr(self, "_stats_at", 0.0) < self.s.stats_every_s:
            return
        self._stats_at = time.monotonic()
        write_atomic(path, json.dumps(self.stats()), sync=False)


class FollowGate:
    """The committed offsets of the serving group: the trainer learns only what was served."""

    def __init__(self, k, group: str, topic: str) -> None:
        self.k, self.group, self.topic = k, f"{k.topic_prefix}{group}", topic
        self.every_s, self._at, self._limits = 0.2, 0.0, {}

    async def start(self) -> None:
        self.c = AIOKafkaConsumer(group_id=self.group, enable_auto_commit=False, **self.k.aiokafka_kwargs())
        await self.c.start()
        self.tps = [TopicPartition(self.topic, p) for p in sorted(await _partitions(self.c, self.topic))]

    async def limits(self) -> dict[int, int]:
        """partition -> the group's committed offset (0 when none), refreshed every 0.2 s."""
        if time.monotonic() - self._at >= self.every_s:
            self._at = time.monotonic()
            for tp in self.tps:
                self._limits[tp.partition] = await self.c.committed(tp) or 0
        return self._limits

    async def stop(self) -> None:
        await self.c.stop()


async def _partitions(c: AIOKafkaConsumer, topic: str, wait_s: float = 60.0) -> set[int]:
    """The topic's partitions, waiting (fresh metadata each second) while it does not exist."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait_s:
        parts = c.partitions_for_topic(topic)
        if parts:
            return parts
        await c.topics()  # refreshes the metadata: a just-created topic can lag in it
        await asyncio.sleep(0.5)
    raise ThreadrecError(f"trainer: topic {topic} has no partitions after {wait_s:.0f}s")


def run_trainer(settings: TrainerSettings) -> None:
    """Run until SIGTERM/SIGINT, then sync and snapshot once more."""
    import signal

    from model.device import set_torch_threads

    logger.info("torch threads: %d", set_torch_threads(settings.torch_threads))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Trainer(settings).run(stop)

    asyncio.run(main())
