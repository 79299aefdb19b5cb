"""Through the real broker: items are encoded once per deployment. Two workers each encode the
items of their own `items` partition and both end with the whole catalogue from item-vectors; a
tombstone removes the item on both; a bad item is dead-lettered once; a worker started later on
an empty disk encodes nothing and serves recommendations."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from model.records import read_jsonl
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import ensure_topic_set
from streams.worker.stats import read_stats
from tests.fixtures.worker import EXACT_FLAGS as FLAGS
from tests.fixtures.worker import broker_settings as _settings
from tests.fixtures.worker import start_worker as _start

pytestmark = pytest.mark.broker


def _wait(workers: dict[str, tuple], done, what: str, timeout_s: float = 120.0) -> dict[str, dict]:
    """Every worker's stats once done(stats) holds for all of them; fails with the logs if not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = {name: read_stats(path) for name, (_, path, _) in workers.items()}
        if all(s is not None and done(s) for s in stats.values()):
            return stats
        for name, (proc, _, log) in workers.items():
            assert proc.poll() is None, f"{name} exited: {log.read_text()[-3000:]}"
        time.sleep(0.3)
    logs = "\n".join(log.read_text()[-1500:] for _, _, log in workers.values())
    raise AssertionError(f"timed out waiting for {what}: {stats}\n{logs}")


def _worker(kafka_broker, prefix: str, ckpt: Path, tmp_path: Path, name: str) -> tuple:
    stats, log = tmp_path / f"{name}.json", tmp_path / f"{name}.log"
    proc = _start(kafka_broker, prefix, ckpt, tmp_path / name, log, stats)
    return proc, stats, log


def _partition_sizes(item_ids: list[str]) -> list[int]:
    """How many of the items land on each `items` partition (the producer's key hashing)."""
    counts = Counter((murmur2(i.encode()) & 0x7FFFFFFF) % FLAGS["partitions"] for i in item_ids)
    return sorted(counts[p] for p in range(FLAGS["partitions"]))


def _send_items(producer, topic: str, items: list[dict], removed: str) -> None:
    for it in items:
        producer.send(topic, key=it["item_id"].encode(), value=json.dumps(it).encode())
    producer.send(topic, key=b"i-bad", value=b"{not json")
    producer.send(topic, key=removed.encode(), value=None)  # tombstone
    producer.flush()


def test_two_workers_each_encode_their_share_and_a_late_worker_encodes_nothing(
        kafka_broker, producer_factory, tiny_checkpoint, prepared, tmp_path):
    prefix = f"iv-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    ensure_topic_set(k)
    items, events = read_jsonl(prepared / "items.jsonl"), read_jsonl(prepared / "engagements.jsonl")
    unused = [it["item_id"] for it in items if it["item_id"] not in {e["item_id"] for e in events}]
    assert unused, "the fixture's catalogue needs an item nobody engages with"
    removed = unused[0]  # removed by a tombstone: it must never be recommended afterwards
    pair = {n: _worker(kafka_broker, prefix, tiny_checkpoint, tmp_path, n) for n in ("a", "b")}
    producer = producer_factory()
    try:
        _wait(pair, lambda s: s["ready"], "both workers ready")
        time.sleep(2.0)  # the group settles with both members
        _send_items(producer, k.topic("items"), items, removed)
        stats = _wait(pair, lambda s: s["items_upserted"] >= len(items) and s["items_removed"] >= 1,
                      "the catalogue on both workers")
        time.sleep(2.0)  # room for a duplicate dead letter to show
        dead = consume_all(kafka_broker.bootstrap, k.topic("deadletter"), 2, timeout_s=5)
    finally:
        for proc, _, _ in pair.values():
            stop_process(proc, timeout_s=30)
    encoded = sorted(s["items_encoded"] for s in stats.values())
    assert encoded == _partition_sizes([it["item_id"] for it in items])  # each its own share
    assert all(0 < n < len(items) for n in encoded) and sum(encoded) == len(items)
    for s in stats.values():
        assert s["items_upserted"] == len(items) and s["items_removed"] == 1
        assert s["unknown_tombstones"] == 0 and s["bad_vectors"] == 0
    assert sum(s["bad_items"] for s in stats.values()) == 1
    letters = [json.loads(d.value) for d in dead]
    assert [(d["source_topic"], d["key"], d["error"].split(":")[0]) for d in letters] == [
        (k.topic("items"), "i-bad", "malformed JSON")]
    vectors = consume_all(kafka_broker.bootstrap, k.topic("item-vectors"), len(items) + 1, timeout_s=20)
    assert sum(v.value is None for v in vectors) == 1  # the tombstone, forwarded as one

    final, recs = _late_worker(kafka_broker, prefix, tiny_checkpoint, tmp_path, producer, events)
    assert final["items_encoded"] == 0 and final["items_upserted"] == len(items)
    assert len(recs) == len(events)
    shown = {x["item_id"] for r in recs for x in json.loads(r.value)["items"]}
    assert shown and removed not in shown  # the tombstone reached the late worker too


def _late_worker(kafka_broker, prefix: str, ckpt: Path, tmp_path: Path, producer,
                 events: list[dict]) -> tuple[dict, list]:
    """A worker started on an empty disk once the vectors are out: its stats after serving
    `events`, and the recommendations."""
    k = _settings(kafka_broker, prefix)
    late = {"c": _worker(kafka_broker, prefix, ckpt, tmp_path, "c")}
    try:
        _wait(late, lambda s: s["ready"] and s["items_upserted"] > 0 and s["items_removed"] > 0,
              "the late worker")
        for e in events:
            producer.send(k.topic("engagements"), key=e["user_id"].encode(), value=json.dumps(e).encode())
        producer.flush()
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), len(events),
                           timeout_s=120, abort=lambda: late["c"][0].poll() is not None)
        final = _wait(late, lambda s: s["recommendations"] >= len(events), "recommendations")["c"]
    finally:
        stop_process(late["c"][0], timeout_s=30)
    return final, recs
