"""Reads the demo's topics back while it runs: engagements (what went in), recommendations (with
their arrival time) and dead letters. One consumer thread with its own event loop, no group."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass
class Arrived:
    """A recommendation as consumed: its value and when it reached us (epoch seconds)."""

    value: dict[str, Any]
    arrival_ts: float


@dataclass
class Collected:
    """Everything read so far; guarded by `lock` (the consumer thread appends)."""

    engagements: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    produce_ts: dict[tuple[int, int], float] = field(default_factory=dict)
    seen_ts: dict[tuple[int, int], float] = field(default_factory=dict)  # read back here (epoch s)
    recommendations: list[Arrived] = field(default_factory=list)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self) -> tuple[int, int, int]:
        with self.lock:
            return len(self.engagements), len(self.recommendations), len(self.deadletters)


class Collector(threading.Thread):
    """Consumes engagements, recommendations and deadletter from offset 0 until stopped."""

    def __init__(self, k: KafkaSettings) -> None:
        super().__init__(name="demo-collector", daemon=True)
        self.k = k
        self.data = Collected()
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._loop())  # a private event loop in this thread
        except BaseException as e:  # surfaced by the demo as one line
            self.error = e

    async def _loop(self) -> None:
        from aiokafka import AIOKafkaConsumer

        names = {self.k.topic(n): n for n in ("engagements", "recommendations", "deadletter")}
        # without a group, subscribing assigns every partition of the topics to this consumer;
        # with nothing committed, each is read from its beginning
        c = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=50, **self.k.aiokafka_kwargs())
        try:
            await c.start()
            c.subscribe(list(names))
            while not self._halt.is_set():
                batches = await c.getmany(timeout_ms=100)
                now = time.time()  # arrival time of everything in this poll
                for tp, records in batches.items():
                    self._add(names[tp.topic], records, now)
        finally:
            await c.stop()

    def _add(self, kind: str, records: list, now: float) -> None:
        with self.data.lock:
            for r in records:
                if kind == "engagements":
                    self.data.engagements[(r.partition, r.offset)] = json.loads(r.value)
                    self.data.produce_ts[(r.partition, r.offset)] = r.timestamp / 1000.0
                    self.data.seen_ts[(r.partition, r.offset)] = now
                elif kind == "recommendations":
                    self.data.recommendations.append(Arrived(json.loads(r.value), now))
                else:
                    self.data.deadletters.append(json.loads(r.value))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def stage_histograms(port: int, host: str = "127.0.0.1") -> dict[str, dict[str, Any]]:
    """The worker's per-batch stage histograms (threadrec_stage_seconds) read from its /metrics:
    {stage: {"count", "sum_s", "buckets": {upper bound s: cumulative batches}}}; {} if unreachable."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
            text = r.read().decode("utf-8")
    except OSError:
        logger.warning("worker metrics on port %d unreachable: no stage histograms", port)
        return {}
    out: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "threadrec_stage_seconds":
            continue
        for s in family.samples:
            h = out.setdefault(s.labels["stage"], {"count": 0, "sum_s": 0.0, "buckets": {}})
            if s.name.endswith("_bucket"):
                h["buckets"][s.labels["le"]] = int(s.value)
            elif s.name.endswith("_count"):
                h["count"] = int(s.value)
            elif s.name.endswith("_sum"):
                h["sum_s"] = s.value
    return out
