"""One question: what does every worker repeat per catalogue item when it reads item vectors
from a shared topic instead of encoding the items itself?

Items encoded once per deployment reach every worker as records of a compacted topic (the
planned `item-vectors`); each worker still consumes every record, decodes it, writes it to its
item store and upserts its vector into its index. This measures those steps on the bundled
broker with the synthetic feed's texts (streams/data/production_feed.py) and the default model's
shapes (CPE n x d float16, vector d float32). Assumed wire format: the item store's own record
codec (store/item_record.py); the real topic's codec may differ by a header. Times are the
process's CPU time per item (robust where other processes share the cores) and wall.

    python bench/bench_scaleout.py --items 20000 --json bench/results/scaleout.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import faiss
import numpy as np

from store import ItemRecord, ItemStore
from store.config import IndexConfig, RocksMemory
from store.faiss_index import FaissIndex
from store.item_record import decode_item_record, encode_item_record
from streams.data.production_feed import FeedConfig, TextMaker, make_catalogue, vocabulary
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.replay import ensure_topics
from streams.kafka.settings import KafkaSettings

DIM, CODES = 384, 4  # the default backbone's hidden size; the item codebook n (SPAR: 4)


def records(n: int, seed: int) -> list[bytes]:
    """n encoded item records: synthetic-feed titles and bodies, random unit vectors."""
    cfg = FeedConfig(items=n, seed=seed)
    cat = make_catalogue(cfg)
    maker = TextMaker(vocabulary(cfg.vocabulary_words)[0], cfg.categories)
    rng = np.random.default_rng(seed)
    titles = maker.texts(cat.cats, 2, 8, 0.7, rng)
    bodies = maker.texts(cat.cats, 10, 60, 0.4, rng)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    cpe = rng.standard_normal((n, CODES, DIM)).astype(np.float16)
    return [encode_item_record(ItemRecord(f"i{k}", f"{titles[k]}. {bodies[k]}", f"c{cat.cats[k]}",
                                          cpe[k], vecs[k], float(cat.births[k])))
            for k in range(n)]


async def produce(k: KafkaSettings, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**k.aiokafka_producer_kwargs())
    await producer.start()
    try:
        for n, value in enumerate(values):
            await producer.send(topic, key=f"i{n}".encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(k: KafkaSettings, topic: str, n: int) -> tuple[list[bytes], float, float]:
    """Every record of topic from the beginning, as a replica reads it: (values, cpu s, wall s)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=k.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or
                                                          await _partitions(consumer, topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[bytes] = []
        t, c = time.perf_counter(), time.process_time()
        while len(out) < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            out += [r.value for recs in batch.values() for r in recs]
        return out, time.process_time() - c, time.perf_counter() - t
    finally:
        await consumer.stop()


async def _partitions(consumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a fresh client may not know the topic yet
    return consumer.partitions_for_topic(topic) or set()


def apply(values: list[bytes], root: Path, batch: int) -> dict[str, float]:
    """CPU seconds of decode + item-store put, and of index upserts in micro-batches."""
    store = ItemStore.open(root / "items", RocksMemory())
    c = time.process_time()
    decoded = []
    for n, value in enumerate(values):
        item = decode_item_record(value)
        store.put(item, {n % 16: n})
        decoded.append(item)
    store_s = time.process_time() - c
    index = FaissIndex(IndexConfig(dim=DIM))
    c = time.process_time()
    for start in range(0, len(decoded), batch):
        chunk = decoded[start:start + batch]
        index.upsert([it.item_id for it in chunk], np.stack([it.vector for it in chunk]))
    return {"decode_store_s": store_s, "index_s": time.process_time() - c, "index_mode": index.mode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20_000, help="records in the vectors topic")
    ap.add_argument("--partitions", type=int, default=16, help="partitions of the vectors topic")
    ap.add_argument("--batch", type=int, default=32, help="index upsert micro-batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    values = records(args.items, args.seed)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        k = KafkaSettings(bootstrap=broker.bootstrap, broker_kind="tansu", partitions=args.partitions)
        topic = f"so-{uuid.uuid4().hex[:8]}-item-vectors"
        ensure_topics(k, [topic])
        asyncio.run(produce(k, topic, values))
        got, consume_cpu, consume_wall = asyncio.run(consume(k, topic, len(values)))
        applied = apply(got, Path(tmp), args.batch)
    n = len(got)
    out = {"question": "per-item work every worker repeats when it reads item vectors",
           "config": {**{a: v for a, v in vars(args).items() if a != "json"}, "dim": DIM, "codes": CODES},
           "record_bytes_mean": float(np.mean([len(v) for v in values])),
           "consume_us_per_item_cpu": 1e6 * consume_cpu / n,
           "consume_us_per_item_wall": 1e6 * consume_wall / n,
           "decode_store_us_per_item_cpu": 1e6 * applied["decode_store_s"] / n,
           "index_upsert_us_per_item_cpu": 1e6 * applied["index_s"] / n,
           "index_mode": applied["index_mode"]}
    out["total_us_per_item_cpu"] = (out["consume_us_per_item_cpu"] + out["decode_store_us_per_item_cpu"]
                                    + out["index_upsert_us_per_item_cpu"])
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
