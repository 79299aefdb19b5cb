"""Broker-backed Faust test: partitioned agent + rocksdb table + changelog recovery."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from tests.fixtures.kafka import consume_all

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[2]


def _start_worker(broker, prefix: str, datadir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "COUNTER_BOOTSTRAP": broker.bootstrap, "COUNTER_BROKER_KIND": broker.kind,
           "COUNTER_PREFIX": prefix, "COUNTER_DATADIR": str(datadir)}
    cmd = [sys.executable, "-m", "tests.integration.counter_app", "worker", "-l", "warn"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _produce(producer, topic: str, events: list[tuple[str, int]]) -> None:
    for key, value in events:
        producer.send(topic, key=key.encode(), value=str(value).encode())
    producer.flush()


def _final_by_key(records) -> dict[str, dict]:
    """Last output per key (outputs of one key are ordered: one partition)."""
    final: dict[str, dict] = {}
    for r in records:
        final[r.key.decode()] = json.loads(r.value)
    return final


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
        _produce(producer, f"{prefix}-in", first)
        for k, v in first:
            expect[k][0] += 1
            expect[k][1] += v
        out = consume_all(kafka_broker.bootstrap, f"{prefix}-out", len(first), timeout_s=120,
                          abort=lambda: worker.poll() is not None)
        assert len(out) == len(first), log.read_text()[-3000:]
        final = _final_by_key(out)
        assert {k: [v["n"], v["sum"]] for k, v in final.items()} == dict(expect)
    finally:
        _stop(worker)

    # A new worker on an empty data dir must rebuild the table from its changelog:
    # continuing sums prove the state was recovered, not restarted from zero.
    worker = _start_worker(kafka_broker, prefix, tmp_path / "data-b", log)
    try:
        _produce(producer, f"{prefix}-in", second)
        for k, v in second:
            expect[k][0] += 1
            expect[k][1] += v
        total = len(first) + len(second)
        out = consume_all(kafka_broker.bootstrap, f"{prefix}-out", total, timeout_s=180,
                          abort=lambda: worker.poll() is not None)
        assert len(out) == total, log.read_text()[-3000:]
        final = _final_by_key(out)
        assert {k: [v["n"], v["sum"]] for k, v in final.items()} == dict(expect)
    finally:
        _stop(worker)
