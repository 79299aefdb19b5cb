"""Through the real broker: a deployment bulk-loaded by streams/data/bulk_load.py (items, item
vectors, the items group's offsets, warm states on the changelog) is what a worker started on
an empty disk restores: it encodes no item, and a warm user's next engagement continues the
history written for it (not a fresh state) and is served."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from model.records import read_jsonl
from model.sessions import SessionHistory, SessionRule
from store import EncoderFingerprint, decode_user_state
from streams.data.bulk_load import Targets, VectorSpec, histories, load_deployment
from streams.data.production_feed import FeedConfig, write_feed
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import ensure_topic_set
from streams.worker.config import WorkerSettings
from streams.worker.stats import read_stats
from tests.fixtures.worker import broker_settings, start_worker

pytestmark = pytest.mark.broker

ITEMS, USERS = 300, 12


def _wait_stats(proc, path, log, done, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = read_stats(path)
        if st is not None and done(st):
            return st
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"worker not done: {read_stats(path)}\n{log.read_text()[-2000:]}")


def test_a_worker_on_an_empty_disk_restores_the_bulk_load_and_serves_it(
        kafka_broker, producer_factory, tiny_model, tiny_checkpoint, tmp_path):
    feed = tmp_path / "feed"
    write_feed(FeedConfig(items=ITEMS, users=USERS, events_per_user=12, seed=3), feed)
    prefix = f"bulk-{uuid.uuid4().hex[:8]}-"
    k = ensure_topic_set(broker_settings(kafka_broker, prefix))
    fp = EncoderFingerprint(tiny_model.identity, tiny_model.dim, tiny_model.config.n)
    targets = Targets(WorkerSettings(kafka=k).items_group_id, k.changelog("user-state"))
    rule = SessionRule.of(tiny_model.config)
    loaded = load_deployment(k, feed, fp, rule, 1000, targets, VectorSpec(clusters=8))
    warm = histories(feed)
    assert loaded["state_load"]["users"] == len(warm) > 0

    held = [e for e in read_jsonl(feed / "test.jsonl") if e["user_id"] in warm]
    event = held[0]
    stats, log = tmp_path / "w.json", tmp_path / "w.log"
    proc = start_worker(kafka_broker, prefix, tiny_checkpoint, tmp_path / "w", log, stats)
    try:
        st = _wait_stats(proc, stats, log, lambda s: s["ready"] and s["items_upserted"] >= ITEMS)
        producer = producer_factory()
        producer.send(k.topic("engagements"), key=event["user_id"].encode(), value=json.dumps(event).encode())
        producer.flush()
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), 1, timeout_s=90,
                           abort=lambda: proc.poll() is not None)
        st = _wait_stats(proc, stats, log, lambda s: s["events"] >= 1)
    finally:
        stop_process(proc, timeout_s=30)
    assert st["items_encoded"] == 0 and st["items_upserted"] == ITEMS and st["vectors_reencoded"] == 0
    assert len(recs) == 1 and json.loads(recs[0].value)["user_id"] == event["user_id"]
    shown = {x["item_id"] for x in json.loads(recs[0].value)["items"]}
    assert shown and not shown & {i for i, _, _ in warm[event["user_id"]]}

    written = consume_all(kafka_broker.bootstrap, targets.changelog, len(warm) + 1, timeout_s=30)
    last = [r for r in written if r.key == event["user_id"].encode()][-1]
    state = decode_user_state(bytes(last.value))
    hist = SessionHistory.empty(rule)
    for item, ts, _ in [*warm[event["user_id"]], (event["item_id"], float(event["ts"]), "")]:
        hist.append(item, ts)
    assert state.item_ids == hist.items  # the warm history, continued by the engagement
    assert state.total_events == len(warm[event["user_id"]]) + 1
