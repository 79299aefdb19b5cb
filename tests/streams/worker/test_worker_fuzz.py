"""Hostile records through a real worker with its default flags (summary lane, --inference auto)
and a hybrid checkpoint (the parameters replica runs): property-based engagement, item and
parameters payloads interleaved with valid engagements. The worker stays up, every hostile
record has exactly one outcome (a dead letter with its reason, or a recommendation where the
payload is valid by policy), every valid engagement gets exactly one recommendation, and a
restart does not dead-letter the replicas' bad records again."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from model.records import read_jsonl
from model.training.tiny import write_id_half
from store import IdRow, encode_row, row_key
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import ensure_topic_set, replay_to_broker
from streams.kafka.settings import KafkaSettings

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[3]
NAMES = ("user_id", "item_id", "ts", "kind", "title")

# the five single messages that used to stop a deployment for good
FIVE = [
    (b"ux", b'{"user_id":"ux","item_id":"i1","ts":' + b"1" * 400 + b',"kind":"click"}'),
    (b"ux", b'{"user_id":"ux","item_id":"i1","ts":' + b"1" * 5000 + b',"kind":"click"}'),
    (b"ux", b"[" * 3000 + b"]" * 3000),
    (b"\xed\xa0\x80", b'{"user_id":"\\ud800","item_id":"i1","ts":1000100,"kind":"click"}'),
]
SURROGATE_ITEM = (b"i-sur", b'{"item_id":"i-sur","title":"\\udc00","ts":1}')

def _shape(rnd: random.Random, depth: int = 0):
    """A random JSON value: scalars of every type (huge, non-finite, surrogates), nested a little."""
    pick = rnd.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return None if rnd.random() < 0.5 else rnd.random() < 0.5
    if pick == 1:
        return rnd.choice([float("nan"), float("inf"), -1e308, 1e-300, rnd.uniform(-1e9, 1e10)])
    if pick == 2:
        return rnd.randrange(-(10**40), 10**40) if rnd.random() < 0.5 else rnd.randrange(-5, 2**63)
    if pick == 3:
        return "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0xD800, 0xE000),
                                       rnd.randrange(0, 0x110000)])) for _ in range(rnd.randrange(12)))
    if pick in (4, 5):
        return rnd.choice(["click", "impression", "ux", "i1", "", " ", "x" * 300])
    if pick in (6, 7):
        return {rnd.choice(NAMES): _shape(rnd, depth + 1) for _ in range(rnd.randrange(5))}
    return [_shape(rnd, depth + 1) for _ in range(rnd.randrange(4))]


def hostile(rnd: random.Random) -> bytes:
    """One hostile payload: random JSON shapes, huge numbers, deep nesting, bad Unicode, bytes."""
    kind = rnd.randrange(6)
    if kind == 0:
        return json.dumps(_shape(rnd, 0)).encode()
    if kind == 1:
        obj = {name: _shape(rnd, 2) for name in NAMES if rnd.random() < 0.8}
        return json.dumps(obj).encode("utf-8" if rnd.random() < 0.8 else "utf-16")
    if kind == 2:
        return rnd.randbytes(rnd.randrange(1, 200))
    if kind == 3:
        n = rnd.randrange(17, 4000)
        return b"[" * n + b"]" * n if rnd.random() < 0.5 else b'{"a":' * n + b"1" + b"}" * n
    if kind == 4:
        digits = b"7" * rnd.randrange(21, 6000)
        return b'{"user_id":"ux","item_id":"i1","ts":' + digits + b',"kind":"click"}'
    return (b'{"user_id":"ux","item_id":"i1","ts":1000050,"kind":"click","x":"'
            + rnd.randbytes(8) + b'"}')


def _start(broker, prefix: str, ckpt: Path, data: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streams.cli", "worker", "--bootstrap", broker.bootstrap,
           "--broker-kind", broker.kind, "--topic-prefix", prefix, "--checkpoint", str(ckpt), "--data-dir", str(data),
           "--device", "cpu", "--partitions", "2", "--loglevel", "info"]  # the rest at defaults
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _row(version: int) -> IdRow:
    import numpy as np

    return IdRow(np.full(8, 0.1, np.float32), np.ones(8, np.float32), 5.0, 1, version)


# one example (each starts a worker), generated only: a shrink would rerun the whole worker
@settings(max_examples=1, derandomize=True, deadline=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=True))
def test_hostile_records_through_a_default_worker(kafka_broker, producer_factory, tiny_checkpoint,
                                                  tmp_path_factory, rnd):
    engagements = [hostile(rnd) for _ in range(24)]
    items = [hostile(rnd) for _ in range(6)]
    params = [rnd.randbytes(rnd.randrange(1, 120)) for _ in range(4)]
    tmp = tmp_path_factory.mktemp("fuzz")
    from streams.data.synthetic import write_prepared_dir

    data = write_prepared_dir(tmp / "data", n_items=30, n_users=8, per_user=6, seed=3)
    ckpt = tmp / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    write_id_half(ckpt, [it["item_id"] for it in read_jsonl(data / "items.jsonl")], scale=4.5)
    prefix = f"fz-{uuid.uuid4().hex[:8]}-"
    k = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind,
                      topic_prefix=prefix, partitions=2)
    ensure_topic_set(k)
    replay_to_broker([data / "items.jsonl"], k, progress=False)
    producer = producer_factory(max_request_size=8_000_000)
    hostile_at: set[tuple[str, int, int]] = set()

    def send(topic: str, key: bytes | None, value: bytes | None) -> tuple[int, int]:
        md = producer.send(k.topic(topic), key=key, value=value).get(timeout=30)
        hostile_at.add((md.topic, md.partition, md.offset))
        return md.partition, md.offset

    # (partition, offset) -> answers expected: an item valid by policy is applied, not answered
    accepted_items = {send("items", b"ih", value): int(not _item_ok(value)) for value in items}
    send("items", *SURROGATE_ITEM)
    for value in params:
        send("parameters", row_key("item", "i1"), value)
    first = read_jsonl(data / "items.jsonl")[0]["item_id"]
    send("parameters", row_key("item", first), encode_row("item", first, _row(2**64 - 1)))
    valid = [dict(e, user_id="ux") for e in read_jsonl(data / "engagements.jsonl")[:len(engagements)]]
    valid_at: set[tuple[int, int]] = set()
    poison = [v for _, v in FIVE] + engagements
    keys = [key for key, _ in FIVE] + [b"ux"] * len(engagements)
    for n, (key, value) in enumerate(zip(keys, poison, strict=True)):
        ok = json.dumps({**valid[n % len(valid)], "ts": 1.0e6 + n}).encode()
        md = producer.send(k.topic("engagements"), key=b"ux", value=ok).get(timeout=30)
        valid_at.add((md.partition, md.offset))
        send("engagements", key, value)
    producer.flush()
    log = tmp / "worker.log"
    worker = _start(kafka_broker, prefix, ckpt, tmp / "w", log)
    try:
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), len(valid_at),
                           timeout_s=240, abort=lambda: worker.poll() is not None)
        time.sleep(3)  # dead letters of the tail, and anything extra, arrive
        dead = consume_all(kafka_broker.bootstrap, k.topic("deadletter"), 10**6, timeout_s=10)
        alive = worker.poll() is None
    finally:
        stop_process(worker, timeout_s=30)
    assert alive, log.read_text()[-3000:]
    by_source = Counter((r["source"]["partition"], r["source"]["offset"])
                        for r in map(lambda m: json.loads(m.value), recs))
    assert {pos: by_source[pos] for pos in valid_at} == {pos: 1 for pos in valid_at}
    letters = Counter((d["source_topic"], d["partition"], d["offset"])
                      for d in map(lambda m: json.loads(m.value), dead))
    for topic, part, off in hostile_at:  # one outcome each: a dead letter, or a recommendation
        answered = letters[(topic, part, off)] + (by_source[(part, off)] if topic.endswith("engagements") else 0)
        expected = accepted_items.get((part, off), 1) if topic.endswith("items") else 1
        assert answered == expected, (topic, part, off, answered)
    reasons = {json.loads(m.value)["error"].split(":")[0] for m in dead}
    assert "unexpected error" not in reasons, reasons  # the parser names every class it refuses
    # a restart reads items from its disk and parameters from the start: nothing sent again
    seen = log.read_text(errors="replace").count("parameters replica caught up")
    worker = _start(kafka_broker, prefix, ckpt, tmp / "w", log)
    try:
        _wait_for_line(log, "parameters replica caught up", seen, worker, 120)
        time.sleep(3)
        again = consume_all(kafka_broker.bootstrap, k.topic("deadletter"), 10**6, timeout_s=10)
        alive = worker.poll() is None
    finally:
        stop_process(worker, timeout_s=30)
    assert alive, log.read_text()[-3000:]
    assert len(again) == len(dead), "a restart dead-lettered the replicas' bad records again"


def _item_ok(value: bytes) -> bool:
    from streams.kafka.messages import InvalidMessage, check_item_key, parse_item

    try:
        check_item_key(parse_item(value), b"ih")
        return True
    except InvalidMessage:
        return False


def _wait_for_line(log: Path, text: str, seen: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if log.read_text(errors="replace").count(text) > seen:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} in the log: {log.read_text(errors='replace')[-2000:]}")
