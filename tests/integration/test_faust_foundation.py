"""Broker-backed Faust test: partitioned agent + rocksdb table + changelog recovery."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from streams.kafka.processes import stop_process

pytestmark = pytest.mark.broker
PROBE = b"probe"
ROOT = Path(__file__).resolve().parents[2]


def _start_worker(broker, prefix: str, datadir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "COUNTER_BOOTSTRAP": broker.bootstrap, "COUNTER_BROKER_KIND": broker.kind,
           "COUNTER_PREFIX": prefix, "COUNTER_DATADIR": str(datadir)}
    cmd = [sys.executable, "-m", "tests.integration.counter_app", "worker", "-l", "warn", "--without-web"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _produce(producer, topic: str, events: list[tuple[str, int]]) -> None:
    for key, value in events:
        producer.send(topic, key=key.encode(), value=str(value).encode())
    producer.flush()


def _final_by_key(records) -> dict[str, dict]:
    """Last output per key (outputs of one key are ordered: one partition); probes left out."""
    final: dict[str, dict] = {}
    for r in records:
        if r.key != PROBE:
            final[r.key.decode()] = json.loads(r.value)
    return final


def _payload_outputs(broker, topic: str, expected: int, worker, timeout_s: float) -> list:
    """Non-probe records of `topic` from the start, until `expected` arrived or timeout."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    out: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline and worker.poll() is None:
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend(r for r in batch if r.key != PROBE)
    finally:
        consumer.close()
    return out


def _wait_until_processing(producer, broker, prefix: str, worker, timeout_s: float = 90) -> None:
    """Send probe events until the worker answers one: it has joined, recovered and runs.

    Events that reach faust-streaming while its consumer group is still rebalancing at
    start-up can be skipped (faust-streaming issues #216/#221; seen here 1 run in ~5
    against tansu), so the test feeds its payload to a worker in steady state.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(f"{prefix}-out", bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="latest", group_id=None)
    consumer.poll(timeout_ms=1000)  # join at the current end
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and worker.poll() is None:
            producer.send(f"{prefix}-in", key=PROBE, value=b"0").get(timeout=10)
            for batch in consumer.poll(timeout_ms=2000).values():
                if any(r.key == PROBE for r in batch):
                    return
    finally:
        consumer.close()
    raise AssertionError("worker never answered a probe event")


def test_agent_table_survive_restart_with_fresh_local_state(kafka_broker, topic_factory,
                                                            producer_factory, tmp_path):
    prefix = f"fc-{uuid.uuid4().hex[:8]}"
    topic_factory  # noqa: B018 - topics are created by the app itself with 4 partitions
    rng = random.Random(7)
    keys = [f"user-{i}" for i in range(37)]
    first = [(rng.choice(keys), rng.randint(1, 100)) for _ in range(1000)]
    second = [(rng.choice(keys), rng.randint(1, 100)) for _ in range(300)]
    expect = defaultdict(lambda: [0, 0])
    log = tmp_path / "worker.log"
    producer = producer_factory()

    worker = _start_worker(kafka_broker, prefix, tmp_path / "data-a", log)
    try:
        _wait_until_processing(producer, kafka_broker, prefix, worker)
        _produce(producer, f"{prefix}-in", first)
        for k, v in first:
            expect[k][0] += 1
            expect[k][1] += v
        out = _payload_outputs(kafka_broker, f"{prefix}-out", len(first), worker, 120)
        assert len(out) == len(first), log.read_text()[-3000:]
        final = _final_by_key(out)
        assert {k: [v["n"], v["sum"]] for k, v in final.items()} == dict(expect)
    finally:
        stop_process(worker, timeout_s=30)

    # A new worker on an empty data dir must rebuild the table from its changelog:
    # continuing sums prove the state was recovered, not restarted from zero.
    worker = _start_worker(kafka_broker, prefix, tmp_path / "data-b", log)
    try:
        _wait_until_processing(producer, kafka_broker, prefix, worker)
        _produce(producer, f"{prefix}-in", second)
        for k, v in second:
            expect[k][0] += 1
            expect[k][1] += v
        total = len(first) + len(second)
        out = _payload_outputs(kafka_broker, f"{prefix}-out", total, worker, 180)
        assert len(out) == total, log.read_text()[-3000:]
        final = _final_by_key(out)
        assert {k: [v["n"], v["sum"]] for k, v in final.items()} == dict(expect)
    finally:
        stop_process(worker, timeout_s=30)
