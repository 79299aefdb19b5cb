"""Bulk-load a prepared synthetic feed into the broker as a running deployment would have left
it, so a worker starting on an empty disk only restores: item records on `items`, their vectors
on `item-vectors` (store/item_vector.py, stamped with the fingerprint of the checkpoint the
workers run), the items group's offsets committed at the ends of `items` (no worker encodes
them again), and warm user states on the workers' user-state changelog (store/user_state.py,
keyed and partitioned as the faust table writes them).

Vectors are not the encoder's output (about 185 items/s on two cores: 90 minutes per million
items): VectorSpec says what they are. A warm state is the user's history before the held-out
cut, sessionized by the one session rule (model/sessions.py); each kept session's embedding is
the mean of its items' vectors, the global embedding the mean of those; a one-line summary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.sessions import SessionHistory, SessionRule
from model.text import item_text
from store import (
    KIND_CODES,
    EarlierItems,
    EncoderFingerprint,
    ItemRecord,
    ItemVector,
    UserState,
    encode_item_vector,
    encode_user_state,
    session_content_key,
)
from store.item_record import hash_text
from store.synthetic import ClusteredVectors, FittedVectors
from streams.kafka.replay import ensure_topics
from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)

CHUNK = 8192  # items per generated block of vectors: the vectors do not depend on memory
IN_FLIGHT = 20_000  # sends awaited together (bounds the producer's buffered records)
Progress = Callable[[str, int], None]  # (stage, records done so far)


@dataclass(frozen=True)
class VectorSpec:
    """Item vectors of the bulk load, generated in blocks of CHUNK items: unit vectors around
    `clusters` seeded centres (store.synthetic.ClusteredVectors), or, with `fitted_from` (a
    directory holding the encoder's items.npy: python -m streams.data.feed_vectors), the mixture
    fitted to encoded items (store.synthetic.FittedVectors: their norms vary as the encoder's
    do). Each CPE code is the vector plus gaussian noise of norm about `cpe_noise`."""

    clusters: int = 1000
    noise: float = 1.0
    cpe_noise: float = 0.1
    seed: int = 0
    fitted_from: str | None = None

    def describe(self) -> dict[str, Any]:
        gen = "FittedVectors" if self.fitted_from else "ClusteredVectors"
        return {"generator": f"store.synthetic.{gen} (streams/data/bulk_load.py VectorSpec)", **asdict(self)}


@dataclass(frozen=True)
class Targets:
    """Where the deployment's artefacts go (the worker's names for them)."""

    items_group: str  # the consumer group that encodes `items` (WorkerSettings.items_group_id)
    changelog: str  # the user-state table's changelog topic
    app_id: str = "threadrec"


class VectorMaker:
    """Vectors (and CPE) of item k, the same for every caller with the same spec and shape."""

    def __init__(self, spec: VectorSpec, fp: EncoderFingerprint) -> None:
        self.spec, self.fp = spec, fp
        self.fitted: FittedVectors | None = None
        if spec.fitted_from:
            encoded = np.load(Path(spec.fitted_from) / "items.npy")
            if encoded.shape[1] != fp.dim:
                raise ValueError(f"{spec.fitted_from}: vectors of dim {encoded.shape[1]}, the checkpoint's is {fp.dim}")
            self.fitted = FittedVectors.fit(encoded, seed=spec.seed)
        self.gen = ClusteredVectors(fp.dim, spec.clusters, spec.noise, spec.seed)

    def block(self, b: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Vectors (n, dim) float32 and CPE (n, codes, dim) float16 of items b*CHUNK ...+n."""
        vec = self.fitted.sample(n, stream=b) if self.fitted else self.gen.sample(n, seed=b)
        rng = np.random.default_rng((self.spec.seed, b, 1))
        noise = rng.standard_normal((n, self.fp.codes, self.fp.dim), dtype=np.float32)
        cpe = vec[:, None, :] + noise * np.float32(self.spec.cpe_noise / np.sqrt(self.fp.dim))
        return vec, cpe.astype(np.float16)

    def vectors(self, n: int) -> np.ndarray:
        """The first n items' vectors (n, dim) float32 (for an exact oracle)."""
        return np.concatenate([self.block(b, min(CHUNK, n - b * CHUNK))[0]
                               for b in range(-(-n // CHUNK))]) if n else np.zeros((0, self.fp.dim), np.float32)


@dataclass
class Catalogue:
    """What the states need of the items written: row of an id, its vector (float16), text key, category."""

    rows: dict[str, int]
    vectors: np.ndarray  # (N, dim) float16
    text_keys: list[int]
    categories: list[str]


def item_blocks(path: Path, start_block: int = 0) -> Iterator[tuple[int, list[bytes]]]:
    """(block number, raw lines) of an items.jsonl, CHUNK lines a block."""
    with path.open("rb") as fh:
        block, lines = start_block, []
        for line in fh:
            if line.strip():
                lines.append(line.strip())
            if len(lines) == CHUNK:
                yield block, lines
                block, lines = block + 1, []
        if lines:
            yield block, lines


def vector_records(maker: VectorMaker, block: int, lines: list[bytes], cat: Catalogue | None
                   ) -> Iterator[tuple[str, bytes, bytes]]:
    """(topic name, key, value) of each item's record on `items` and its vector on `item-vectors`
    (encode_item_vector, as the items encoder publishes it); fills `cat` on the way."""
    vec, cpe = maker.block(block, len(lines))
    for k, line in enumerate(lines):
        item = json.loads(line)
        item_id, text = str(item["item_id"]), item_text(item)
        record = ItemRecord(item_id, text, str(item.get("category") or ""), cpe[k], vec[k],
                            float(item.get("ts") or 0.0))
        if cat is not None:
            cat.rows[item_id] = len(cat.text_keys)
            cat.text_keys.append(hash_text(text))
            cat.categories.append(record.category)
        yield "items", item_id.encode(), line
        yield "item-vectors", item_id.encode(), encode_item_vector(ItemVector(record, maker.fp))
    if cat is not None:
        cat.vectors[block * CHUNK: block * CHUNK + len(lines)] = vec.astype(np.float16)


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    return (a / max(float(np.linalg.norm(a)), 1e-12)).astype(np.float16)


def warm_state(user_id: str, events: list[tuple[str, float, str]], rule: SessionRule,
               remember: int, cat: Catalogue) -> UserState:
    """The state of a user after `events` (item, ts, kind; time order): the kept history and
    sessions by the session rule, earlier items by fingerprint, generated embeddings."""
    hist = SessionHistory.empty(rule)
    for item, ts, _ in events:
        hist.append(item, ts)
    kept = events[len(events) - len(hist.items):]
    sessions = hist.sessions()
    embs = [_unit(np.mean([cat.vectors[cat.rows[i]] for i in ids], axis=0, dtype=np.float32))
            for ids in sessions]
    keys = [session_content_key(ids, [cat.text_keys[cat.rows[i]] for i in ids]) for ids in sessions]
    top = [c for c, _ in Counter(cat.categories[cat.rows[i]] for i, _, _ in events).most_common(2)]
    last = float(events[-1][1])
    return UserState(
        user_id=user_id, item_ids=list(hist.items), timestamps=np.array(hist.times, np.float64),
        kinds=np.array([KIND_CODES[k] for _, _, k in kept], np.uint8),
        session_starts=np.array(hist.starts, np.uint32), session_keys=np.array(keys, np.uint64),
        session_embeddings=np.stack(embs), global_embedding=_unit(np.mean(embs, axis=0, dtype=np.float32)),
        summary=f"Reads mostly {' and '.join(top)}; {len(events)} engagements so far.",
        total_events=len(events), events_since_summary=0, last_seen=last, version=len(events),
        summary_events=len(events), summary_ts=last,
        earlier_items=EarlierItems.of([i for i, _, _ in events[:len(events) - len(kept)]], remember))


def histories(data_dir: Path, splits: Iterable[str] = ("train", "valid")) -> dict[str, list[tuple[str, float, str]]]:
    """user_id -> (item, ts, kind) in time order (stable), from the prepared dir's splits."""
    out: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    for split in splits:
        with (data_dir / f"{split}.jsonl").open("rb") as fh:
            for line in fh:
                if line.strip():
                    e = json.loads(line)
                    out[str(e["user_id"])].append((str(e["item_id"]), float(e["ts"]), str(e.get("kind") or "click")))
    for events in out.values():
        events.sort(key=lambda e: e[1])
    return dict(out)


def user_partition(user_id: str, partitions: int) -> int:
    """The engagements partition of a user (the producers' default partitioner: murmur2 of the key)."""
    from aiokafka.partitioner import murmur2

    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


async def send_all(k: KafkaSettings, records: Iterable[tuple[str, bytes, bytes, int | None]],
                   progress: Progress | None = None, stage: str = "records") -> Counter:
    """Send (topic, key, value, partition or None for the key's) with the broker's producer
    quirks; returns bytes per topic once every record is delivered."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**k.aiokafka_producer_kwargs())
    await producer.start()
    sent, pending, n = Counter(), [], 0
    try:
        for topic, key, value, part in records:
            pending.append(await producer.send(topic, key=key, value=value, partition=part))
            sent[topic] += len(key) + len(value)
            n += 1
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending = []
                if progress:
                    progress(stage, n)
        await asyncio.gather(*pending)
        if progress:
            progress(stage, n)
    finally:
        await producer.stop()
    return sent


async def commit_group(k: KafkaSettings, topic: str, group: str) -> dict[int, int]:
    """Commit `group`'s offsets of `topic` at its end offsets now (what a group that handled
    every record would have committed); returns them."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **k.aiokafka_kwargs())
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        ends = await c.end_offsets(tps)
        await c.commit({tp: end for tp, end in ends.items() if end})
    finally:
        await c.stop()
    return {tp.partition: end for tp, end in ends.items()}


def load_items(k: KafkaSettings, items_path: Path, maker: VectorMaker, targets: Targets,
               progress: Progress | None = None, keep: Catalogue | None = None,
               topics: tuple[str, ...] = ("items", "item-vectors"), start_block: int = 0) -> dict[str, Any]:
    """Items and their vectors into the broker (only `topics` of the two); then, when `items`
    was written, the items group committed at its ends. Fills `keep` with what states need."""
    t0 = time.perf_counter()
    ensure_topics(k, [k.topic(t) for t in topics])
    records = ((k.topic(t), key, value, None)
               for block, lines in item_blocks(items_path, start_block)
               for t, key, value in vector_records(maker, block, lines, keep) if t in topics)
    sent = asyncio.run(send_all(k, records, progress, "items"))
    ends = asyncio.run(commit_group(k, k.topic("items"), targets.items_group)) if "items" in topics else {}
    return {"bytes": {t: sent[k.topic(t)] for t in topics}, "items_group_committed": ends,
            "seconds": time.perf_counter() - t0}


def load_states(k: KafkaSettings, history: dict[str, list[tuple[str, float, str]]], cat: Catalogue,
                rule: SessionRule, remember: int, targets: Targets,
                progress: Progress | None = None) -> dict[str, Any]:
    """Warm states of every user in `history` onto the changelog, each in its engagements
    partition (as the faust table writes it); returns their encoded sizes and the time taken."""
    t0 = time.perf_counter()
    k = ensure_topics(k, [targets.changelog, k.topic("engagements")])  # its partition count
    sizes: list[int] = []

    def records() -> Iterator[tuple[str, bytes, bytes, int | None]]:
        for user, events in history.items():
            value = encode_user_state(warm_state(user, events, rule, remember, cat))
            sizes.append(len(value))
            yield targets.changelog, user.encode(), value, user_partition(user, k.partitions)
    asyncio.run(send_all(k, records(), progress, "states"))
    return {"users": len(sizes), "state_bytes": sizes, "seconds": time.perf_counter() - t0}


def load_deployment(k: KafkaSettings, data_dir: Path, fp: EncoderFingerprint, rule: SessionRule,
                    remember: int, targets: Targets, spec: VectorSpec | None = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    """The whole bulk load of a prepared dir: items, vectors, the items group's offsets, then
    the warm states of every user with history before the held-out test split."""
    spec = spec or VectorSpec()
    n = json.loads((data_dir / "meta.json").read_text())["counts"]["items"]
    cat = Catalogue({}, np.zeros((n, fp.dim), np.float16), [], [])
    items = load_items(k, data_dir / "items.jsonl", VectorMaker(spec, fp), targets, progress, cat)
    states = load_states(k, histories(data_dir), cat, rule, remember, targets, progress)
    return {"items": n, "vectors": spec.describe(), "encoder": fp.short(), "item_load": items,
            "state_load": states}
