"""Replay a prepared data directory (or its files) into the `items` and `engagements` topics.

Events go out in event-time order: an item is sent at its ts (items before
engagements on ties) and, at the latest, just before the first engagement that
needs it. Keys: item_id for items, user_id for engagements. Values follow the
topic contracts (docs/architecture.md); extra fields (e.g. `rating`) are dropped unless keep_extra.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from streams.data.records import (
    BadRecord,
    Engagement,
    Item,
    Problems,
    engagement_from_json,
    item_from_json,
    jsonl_rows,
    require_known_item,
)
from streams.errors import BrokerError, DataError
from streams.kafka.settings import KafkaSettings
from streams.progress import progress as show_progress

logger = logging.getLogger(__name__)

# logical names: topics keeping the latest per key
COMPACTED_TOPICS = ("items", "item-vectors", "parameters")

SPLIT_FILES = {"all": "engagements.jsonl", "train": "train.jsonl", "valid": "valid.jsonl",
               "test": "test.jsonl"}


@dataclasses.dataclass
class ReplayReport:
    """What a replay sent."""

    counts: dict[str, int]  # topic name -> records sent
    seconds: float
    skipped: dict[str, int]

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    def lines(self) -> list[str]:
        out = [f"sent {n:,} to {topic}" for topic, n in self.counts.items()]
        out.append(f"{self.events:,} events in {self.seconds:.2f}s ({self.events_per_s:,.0f} events/s)")
        out += [f"skipped {n} x {reason}" for reason, n in sorted(self.skipped.items())]
        return out


# -- loading ----------------------------------------------------------------------

def _classify(path: Path, problems: Problems) -> tuple[str, list[tuple[int, dict]]]:
    rows = list(jsonl_rows(path, problems))
    kind = "engagements" if rows and "user_id" in rows[0][1] else "items"
    return kind, rows


def _parse(path: Path, rows: list[tuple[int, dict]], parse: Callable, problems: Problems,
           known: set[str] | None = None) -> list[Any]:
    out = []
    for lineno, row in rows:
        try:
            rec = parse(row)
            require_known_item(rec, known)
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
            continue
        out.append(rec)
    return out


def load_replay(source: Path | Sequence[Path], split: str = "all",
                problems: Problems | None = None) -> tuple[list[Item], list[Engagement]]:
    """Items and engagements (in event-time order) from a prepared dir or jsonl files.

    Files are told apart by their first record (a `user_id` field = engagements).
    """
    problems = problems or Problems()
    paths = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    if len(paths) == 1 and paths[0].is_dir():
        if split not in SPLIT_FILES:
            raise DataError(f"unknown split {split!r} (expected {', '.join(SPLIT_FILES)})")
        paths = [paths[0] / "items.jsonl", paths[0] / SPLIT_FILES[split]]
    elif split != "all":
        raise DataError("--from-split needs a prepared directory, not a list of files")
    classified = [(p, *_classify(p, problems)) for p in paths]
    items: list[Item] = []
    for path, kind, rows in classified:
        if kind == "items":
            items += _parse(path, rows, item_from_json, problems)
    # Without an items file the items are assumed to be in the topic already.
    known = {it.item_id for it in items} if items else None
    engagements: list[Engagement] = []
    for path, kind, rows in classified:
        if kind == "engagements":
            engagements += _parse(path, rows, engagement_from_json, problems, known)
    return items, sorted(engagements, key=lambda e: e.ts)


def plan(items: Sequence[Item], engagements: Sequence[Engagement],
         limit: int | None = None) -> Iterator[tuple[float, Item | Engagement]]:
    """(pacing ts, record) in send order; `limit` caps engagements (then nothing more is sent).

    Pacing ts never goes back in time and starts at the first engagement, so items
    published long before the replayed window go out at once.
    """
    pending = sorted(items, key=lambda it: it.ts)  # stable: file order on ties
    by_id = {it.item_id: it for it in items}
    sent: set[str] = set()
    start = engagements[0].ts if engagements else (pending[0].ts if pending else 0.0)
    clock, i = start, 0
    for n, eng in enumerate(engagements):
        if limit is not None and n >= limit:
            return
        while i < len(pending) and pending[i].ts <= eng.ts:
            item, i = pending[i], i + 1
            if item.item_id not in sent:
                sent.add(item.item_id)
                clock = max(clock, item.ts)
                yield clock, item
        needed = by_id.get(eng.item_id)
        if needed is not None and eng.item_id not in sent:
            sent.add(eng.item_id)  # published later than used: send it now, just before
            yield clock, needed
        clock = max(clock, eng.ts)
        yield clock, eng
    for item in pending[i:]:
        if item.item_id not in sent:
            clock = max(clock, item.ts)
            yield clock, item


# -- pacing and producing ---------------------------------------------------------

class Pacer:
    """Sleeps so that event time runs `speed` x real time, or events stay under `rate`/s."""

    def __init__(self, speed: float | None = None, rate: float | None = None) -> None:
        if speed is not None and speed <= 0 or rate is not None and rate <= 0:
            raise DataError("--speed and --rate must be positive")
        self.speed, self.rate = speed, rate
        self._t0: float | None = None
        self._ts0 = 0.0
        self._n = 0

    async def wait(self, ts: float) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._ts0 = now, ts
        due = self._t0
        if self.speed:
            due = max(due, self._t0 + (ts - self._ts0) / self.speed)
        if self.rate:
            due = max(due, self._t0 + self._n / self.rate)
        self._n += 1
        if due > now:
            # an asyncio sleep: the producer's sender task must run meanwhile to send on time
            await asyncio.sleep(due - now)


def new_topics(settings: KafkaSettings, names: Sequence[str]) -> list:
    """aiokafka NewTopic specs: settings.partitions each, decided replication and
    min.insync.replicas, compaction for COMPACTED_TOPICS and faust's table changelogs."""
    from aiokafka.admin import NewTopic

    compacted = {settings.topic(t) for t in COMPACTED_TOPICS}
    factor = settings.replication()[0]

    def configs(name: str) -> dict[str, str]:
        # a changelog created ahead of the worker (warm start) must be what faust would create
        keep_latest = name in compacted or name.endswith("-changelog")
        return {**settings.topic_configs(), **({"cleanup.policy": "compact"} if keep_latest else {})}

    return [NewTopic(n, settings.partitions, factor, topic_configs=configs(n)) for n in names]


# every topic of a deployment; `item-vectors` is written by the workers' items encoder (encoded
# once per deployment), `parameters` by the online trainer (streams/trainer/)
TOPIC_NAMES = ("items", "item-vectors", "engagements", "recommendations", "deadletter", "parameters")


def ensure_topic_set(settings: KafkaSettings) -> KafkaSettings:
    """Create whichever topics of the deployment (TOPIC_NAMES, with the prefix) are missing;
    returns the settings with replication decided (see ensure_topics)."""
    return ensure_topics(settings, [settings.topic(n) for n in TOPIC_NAMES])


def ensure_topics(settings: KafkaSettings, names: Sequence[str]) -> KafkaSettings:
    """Create the topics that are missing, with settings.partitions partitions; returns the
    settings with replication decided for this cluster (KafkaSettings.decided) and, where
    `engagements` exists already, its partition count (tables must match it; see _adopted).

    The items topic is a catalogue keyed by item_id with tombstones, so it is created compacted:
    the latest record per item survives, deleted items vanish (brokers without compaction ignore it).
    `parameters` (ID rows keyed by table/id, tombstones for expired rows) likewise.
    """
    return asyncio.run(_ensure_topics(settings, names))


async def _ensure_topics(settings: KafkaSettings, names: Sequence[str]) -> KafkaSettings:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs())
    try:
        try:
            await admin.start()
        except KafkaError as e:
            raise BrokerError(f"cannot reach Kafka at {settings.bootstrap}: {e}") from e
        settings = settings.decided(len((await admin.describe_cluster())["brokers"]))
        existing = set(await admin.list_topics())
        settings = await _adopted(admin, settings, existing)
        missing = [n for n in names if n not in existing]
        if missing:
            response = await admin.create_topics(new_topics(settings, missing))
            _check_created(response.topic_errors)
            logger.info("created topics %s (replication %d, min.insync.replicas %d)", missing,
                        *settings.replication())
    finally:
        await admin.close()
    return settings


async def _adopted(admin, settings: KafkaSettings, existing: set[str]) -> KafkaSettings:
    """settings with the partition count of an existing `engagements` topic: a count cannot
    change in place (keys would move away from their state), and a deployment made with another
    default must keep working; a mismatch with the configured count is logged."""
    name = settings.topic("engagements")
    if name not in existing:
        return settings
    (described,) = await admin.describe_topics([name])
    count = len(described["partitions"])
    if count and count != settings.partitions:
        logger.warning("%s has %d partitions, not the configured %d: using %d (a topic's count "
                       "cannot change in place)", name, count, settings.partitions, count)
        return settings.model_copy(update={"partitions": count})
    return settings


def _check_created(topic_errors: Sequence[tuple]) -> None:
    """BrokerError for the first topic the broker refused to create."""
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    # aiokafka reports per-topic errors in the response instead of raising them
    for topic, code, *message in topic_errors:
        error = for_code(code)
        if code == 0 or error is TopicAlreadyExistsError:  # created concurrently by someone: fine
            continue
        raise BrokerError(f"cannot create topic {topic}: {error(*message)}")


async def _producer(settings: KafkaSettings):
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(key_serializer=lambda k: k.encode("utf-8"),
                                value_serializer=lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8"),
                                **settings.aiokafka_producer_kwargs())
    try:
        await producer.start()
    except KafkaError as e:
        await producer.stop()
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap}: {e}") from e
    return producer


def _note_failure(errors: list, future: asyncio.Future) -> None:
    """Done-callback of one send: keeps its error for the report after the last send."""
    if not future.cancelled() and future.exception() is not None:
        errors.append(future.exception())


async def _send_all(settings: KafkaSettings, records: Iterable[tuple[float, Item | Engagement]],
                    topics: dict[str, str], pacer: Pacer, keep_extra: bool) -> tuple[Counter, float]:
    """Send the planned records in order, paced; (records per topic, seconds) once all are out."""
    from aiokafka.errors import KafkaError

    producer = await _producer(settings)
    counts, errors = Counter(), []
    started = time.perf_counter()
    try:
        for ts, rec in records:
            await pacer.wait(ts)
            value = rec.to_json() if keep_extra else rec.contract()
            if isinstance(rec, Item):
                topic, key = topics["items"], rec.item_id
            else:
                topic, key = topics["engagements"], rec.user_id
            future = await producer.send(topic, key=key, value=value)
            future.add_done_callback(functools.partial(_note_failure, errors))
            counts[topic] += 1
        await producer.flush()
    except KafkaError as e:
        raise BrokerError(f"cannot send to Kafka at {settings.bootstrap}: {e}") from e
    finally:
        await producer.stop()  # also lets the last done-callbacks run
    if errors:
        raise BrokerError(f"{len(errors)} records failed to send, first: {errors[0]}")
    return counts, time.perf_counter() - started


def replay_to_broker(source: Path | Sequence[Path], settings: KafkaSettings, *,
                     speed: float | None = None, rate: float | None = None,
                     limit: int | None = None, split: str = "all", keep_extra: bool = False,
                     skip_bad: bool = False, progress: bool = True,
                     create_topics: bool = True) -> ReplayReport:
    """Produce a prepared dir's items + engagements into their topics in event-time order."""
    problems = Problems(skip_bad)
    items, engagements = load_replay(source, split, problems)
    topics = {"items": settings.topic("items"), "engagements": settings.topic("engagements")}
    if create_topics:
        ensure_topics(settings, list(topics.values()))
    n_eng = len(engagements) if limit is None else min(limit, len(engagements))
    total = n_eng + len(items) if limit is None else None
    pacer = Pacer(speed, rate)
    records = show_progress(plan(items, engagements, limit), "replay", total=total,
                            enabled=progress, transient=False)
    counts, seconds = asyncio.run(_send_all(settings, records, topics, pacer, keep_extra))
    report = ReplayReport({t: counts[t] for t in topics.values()}, seconds, dict(problems.counts))
    for line in report.lines():
        logger.info(line)
    return report
