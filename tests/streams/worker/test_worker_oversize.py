"""Through the real broker: oversize records must not stop the worker (issue: one-message outage).

A 2 MB engagement payload used to become a 2 MB dead letter, and a valid engagement with a
600 kB user_id a 1.2 MB recommendation; both broke the producer's 1 MiB request limit, the
agent died, and every later engagement got nothing while the process looked healthy.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.request
import uuid

import pytest

from model.records import read_jsonl
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import replay_to_broker
from tests.fixtures.worker import broker_settings as _settings
from tests.fixtures.worker import start_worker as _start

pytestmark = pytest.mark.broker


def test_oversize_messages_are_dead_lettered_and_later_engagements_still_recommended(
        kafka_broker, producer_factory, tiny_checkpoint, prepared, tmp_path):
    prefix = f"wo-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    events = read_jsonl(prepared / "engagements.jsonl")
    replay_to_broker([prepared / "items.jsonl"], k, progress=False)
    producer = producer_factory(max_request_size=8_000_000)
    bad_items = [b"{not json", json.dumps({"item_id": "i-huge", "title": "t", "body": "b" * 2_000_000,
                                           "ts": 1.0}).encode()]
    for value in bad_items:
        producer.send(k.topic("items"), key=b"i-bad", value=value)
    producer.send(k.topic("items"), key=b"i-never-seen", value=None)  # tombstone, unknown item
    producer.flush()
    log = tmp_path / "worker.log"
    port = free_port()
    worker = _start(kafka_broker, prefix, tiny_checkpoint, tmp_path / "w", log,
                    extra=("--metrics-port", str(port)))
    first, later = events[: len(events) // 2], events[len(events) // 2:]
    item_text = json.dumps({"item_id": "i-big", "title": "t", "body": "x" * 2_000_000,
                            "ts": 1.0e6}).encode()
    huge_user = "u" * 600_000
    huge_valid = json.dumps({"user_id": huge_user, "item_id": first[0]["item_id"],
                             "ts": first[0]["ts"], "kind": "click"}).encode()
    topic = k.topic("engagements")
    try:
        for e in first:
            producer.send(topic, key=e["user_id"].encode(), value=json.dumps(e).encode())
        producer.send(topic, key=b"u-big", value=item_text)
        producer.send(topic, key=huge_user.encode(), value=huge_valid)
        for e in later:
            producer.send(topic, key=e["user_id"].encode(), value=json.dumps(e).encode())
        producer.flush()
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), len(events),
                           timeout_s=150, abort=lambda: worker.poll() is not None)
        dead = consume_all(kafka_broker.bootstrap, k.topic("deadletter"), 4, timeout_s=30)
        assert worker.poll() is None, log.read_text()[-3000:]
        time.sleep(1.5)  # one gauge refresh
        metrics = scrape(port)
    finally:
        stop_process(worker, timeout_s=30)
    got = {(json.loads(r.value)["user_id"], json.loads(r.value)["source"]["offset"]) for r in recs}
    assert len(recs) == len(events) == len(got), log.read_text()[-3000:]
    assert {u for u, _ in got} == {e["user_id"] for e in events}
    item_letters = sorted((json.loads(d.value) for d in dead
                           if json.loads(d.value)["source_topic"] == k.topic("items")),
                          key=lambda d: d["offset"])
    assert [d["error"].split(":")[0] for d in item_letters] == ["malformed JSON", "oversize payload"]
    assert item_letters[1]["payload_bytes"] == len(bad_items[1])
    dead = sorted((d for d in dead if json.loads(d.value)["source_topic"] == topic),
                  key=lambda d: json.loads(d.value)["offset"])
    letters = sorted((json.loads(d.value) for d in dead), key=lambda d: d["offset"])
    assert [d["error"].split(":")[0] for d in letters] == ["oversize payload", "oversize payload"]
    for d, raw, rec in zip(letters, [item_text, huge_valid], dead, strict=True):
        assert d["payload_bytes"] == len(raw) and d["truncated"] is True
        assert d["payload_sha256"] == hashlib.sha256(raw).hexdigest()
        assert raw.decode().startswith(d["payload"]) and len(rec.value) < 16_384
        assert rec.key is not None and len(rec.key) <= 256
    # the operator's view of the same run
    assert metrics["threadrec_recommendations_total"] == len(events)
    assert metrics["threadrec_engagements_total"] == len(events) + 2
    source = k.topic("engagements")
    assert metrics[f'threadrec_dead_letters_total{{reason="oversize payload",source="{source}"}}'] == 2
    assert metrics["threadrec_end_to_end_seconds_count"] == len(events)
    for stage in ("model", "store", "index", "kafka"):
        assert metrics[f'threadrec_stage_seconds_count{{stage="{stage}"}}'] > 0
    assert metrics["threadrec_item_replica_behind"] == 0
    assert metrics['threadrec_model_info{version="tiny-test"}'] == 1
    assert {key for key in metrics if key.startswith("threadrec_consumer_lag{")}
    assert "threadrec_summary_staleness_events_count" in metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """The Prometheus text format as {series with labels: value}."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out
