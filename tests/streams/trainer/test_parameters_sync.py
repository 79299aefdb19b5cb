"""Through the real broker: ID rows published to `parameters` reach a worker's hybrid scores.

The trainer's side is played by a plain producer writing the contract (store/id_row.py): key
row_key("item", id), value encode_row(...), None for a tombstone. The worker's answers are
compared with the engine run offline on the same events with the same records applied.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from model.inference import EmbSumInference
from model.records import read_jsonl
from model.training.tiny import write_id_half
from store import IdRow, encode_row, row_key
from streams.data.synthetic import write_prepared_dir
from streams.engine.engine import Engine
from streams.engine.id_half import IdHalf
from streams.engine.parameters import apply_parameters
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import ensure_topics, replay_to_broker
from streams.worker.config import WorkerSettings
from streams.worker.stats import read_stats
from tests.fixtures.worker import EXACT_FLAGS as FLAGS
from tests.fixtures.worker import broker_settings as _settings
from tests.fixtures.worker import start_worker as _start
from tests.streams.engine.test_parameters_apply import _corrupt
from tests.streams.worker.test_worker_oversize import free_port, scrape

pytestmark = pytest.mark.broker
VERSION = 5  # the sync version the "trainer" stamps on its rows


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_prepared_dir(tmp_path_factory.mktemp("data"), n_items=30, n_users=8, per_user=6,
                              seed=3)


@pytest.fixture(scope="module")
def hybrid_checkpoint(tiny_checkpoint, data, tmp_path_factory) -> Path:
    """tiny_checkpoint plus an ID half (SASRec dim 8, gate scale 4.5) with a row per item."""
    path = tmp_path_factory.mktemp("hybrid") / "ckpt"
    shutil.copytree(tiny_checkpoint, path)
    return write_id_half(path, [it["item_id"] for it in read_jsonl(data / "items.jsonl")], scale=4.5)


def _offline(ckpt: Path, k, items: list[dict]) -> Engine:
    model = EmbSumInference.from_checkpoint(ckpt, device="cpu")
    ws = WorkerSettings(kafka=k, **{f: v for f, v in FLAGS.items() if f != "partitions"})
    eng = Engine.in_memory(model, ws.engine_config(model.config, "x"),
                           id_half=IdHalf.from_checkpoint(ckpt))
    eng.upsert_items(items)
    return eng


def _split(events: list[dict], first: int) -> tuple[list[dict], list[dict]]:
    """Each user's first `first` events, and the rest; both in event-time order."""
    seen: Counter = Counter()
    a, b = [], []
    for e in events:
        seen[e["user_id"]] += 1
        (a if seen[e["user_id"]] <= first else b).append(e)
    return a, b


def _row_towards(half: IdHalf, history: list[str], norm: float) -> IdRow:
    """A row whose ID term is large and positive for a user with this history."""
    h = half.user_vectors([history])[0]
    vector = (norm * h / np.linalg.norm(h)).astype(np.float32)
    return IdRow(vector, np.ones_like(vector), 1.0, 1, VERSION)


def _plan(ckpt: Path, k, items: list[dict], a: list[dict], b: list[dict]) -> dict:
    """Choose the rows to publish from an offline run without them: T (not in its user's
    history) gets a row pointing at the first B user, D (the item B recommends most) is deleted."""
    plain = _offline(ckpt, k, items)
    plain.process_engagements(a)
    none_b = [r.recommendation for r in plain.process_engagements(b)]
    user = b[0]["user_id"]
    history = [e["item_id"] for e in a + b if e["user_id"] == user]
    first_hist = [e["item_id"] for e in a if e["user_id"] == user] + [b[0]["item_id"]]
    shown = Counter(x["item_id"] for r in none_b for x in r["items"])
    target = next(it["item_id"] for it in items if it["item_id"] not in history)
    deleted = next(i for i, _ in shown.most_common() if i != target)
    row = _row_towards(plain.id_half, first_hist, norm=3.0)
    return {"target": target, "deleted": deleted, "row": row, "none_b": none_b}


def _publish(producer, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    for key, value in records:  # one partition: the corrupt ones come before the valid ones
        producer.send(topic, key=key, value=value, partition=0)
    producer.flush()


def _send(producer, topic: str, events: list[dict]) -> None:
    for e in events:
        producer.send(topic, key=e["user_id"].encode(), value=json.dumps(e).encode())
    producer.flush()


def _wait_stats(path: Path, worker, predicate, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.poll() is None, "worker exited"
        st = read_stats(path)
        if st is not None and predicate(st):
            return st
        time.sleep(0.2)
    raise AssertionError(f"stats never matched: {read_stats(path)}")


def _by_source(recs: list) -> dict[tuple[int, int], dict]:
    out = {}
    for r in recs:
        m = json.loads(r.value)
        out[(m["source"]["partition"], m["source"]["offset"])] = m
    return out


def _expected_b(ckpt: Path, k, items: list[dict], a: list[dict], b: list[dict],
                records: list) -> list[dict]:
    """The offline engine: A, then the same parameters records, then B."""
    eng = _offline(ckpt, k, items)
    eng.process_engagements(a)
    apply_parameters(eng.id_half, records)
    return [r.recommendation for r in eng.process_engagements(b)]


def test_synced_rows_change_scores_tombstones_zero_the_term_corrupt_records_dead_lettered(
        kafka_broker, producer_factory, hybrid_checkpoint, data, tmp_path):
    prefix = f"wp-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    items, events = read_jsonl(data / "items.jsonl"), read_jsonl(data / "engagements.jsonl")
    a, b = _split(events, 3)
    plan = _plan(hybrid_checkpoint, k, items, a, b)
    t_id, d_id = plan["target"], plan["deleted"]
    bad = _corrupt(t_id, d_id)
    records = [*bad.values(), (row_key("item", t_id), encode_row("item", t_id, plan["row"])),
               (row_key("item", d_id), None)]
    replay_to_broker([data / "items.jsonl"], k, progress=False)
    log, stats, port = tmp_path / "worker.log", tmp_path / "stats.json", free_port()
    worker = _start(kafka_broker, prefix, hybrid_checkpoint, tmp_path / "w", log, stats=stats,
                    extra=("--metrics-port", str(port)))
    producer, rtopic = producer_factory(), k.topic("recommendations")
    try:
        _send(producer, k.topic("engagements"), a)
        recs_a = consume_all(kafka_broker.bootstrap, rtopic, len(a), timeout_s=150,
                             abort=lambda: worker.poll() is not None)
        assert len(recs_a) == len(a), log.read_text()[-3000:]
        _publish(producer, k.topic("parameters"), records)
        synced = _wait_stats(stats, worker, lambda s: s["param_applied"] + s["param_deleted"] == 2
                             and s["param_corrupt"] == len(bad))
        _send(producer, k.topic("engagements"), b)
        recs = consume_all(kafka_broker.bootstrap, rtopic, len(events), timeout_s=150,
                           abort=lambda: worker.poll() is not None)
        dead = consume_all(kafka_broker.bootstrap, k.topic("deadletter"), len(bad), timeout_s=30)
        time.sleep(1.5)  # one gauge refresh
        metrics = scrape(port)
    finally:
        stop_process(worker, timeout_s=30)
    assert len(recs) == len(events), log.read_text()[-3000:]
    # (c) every corrupt record dead-lettered with its reason; the valid ones after them applied
    letters = sorted((json.loads(d.value) for d in dead), key=lambda d: d["offset"])
    assert [d["source_topic"] for d in letters] == [k.topic("parameters")] * len(bad)
    assert [d["error"].split(":")[0] for d in letters] == list(bad)
    assert synced["param_version"] == VERSION and synced["param_rows"] == len(items) - 1
    assert (synced["param_applied"], synced["param_deleted"], synced["param_stale"]) == (1, 1, 0)
    # (a) recommendations before the sync carry version 0, after it VERSION
    assert {json.loads(r.value)["param_version"] for r in recs_a} == {0}
    by_src = _by_source(recs)
    engagements = consume_all(kafka_broker.bootstrap, k.topic("engagements"), len(events))
    pos = {(json.loads(r.value)["user_id"], json.loads(r.value)["ts"]): (r.partition, r.offset)
           for r in engagements}
    got_b = [by_src[pos[(e["user_id"], e["ts"])]] for e in b]
    assert {m["param_version"] for m in got_b} == {VERSION}
    want_b = _expected_b(hybrid_checkpoint, k, items, a, b, records)
    for got, want in zip(got_b, want_b, strict=True):  # the worker scores as the engine does
        assert [x["item_id"] for x in got["items"]] == [x["item_id"] for x in want["items"]]
        np.testing.assert_allclose([x["score"] for x in got["items"]],
                                   [x["score"] for x in want["items"]], rtol=1e-4, atol=1e-4)
    # the published row puts T on top for the user it points at; without it T was not there
    assert got_b[0]["items"][0]["item_id"] == t_id
    assert t_id not in [x["item_id"] for x in plan["none_b"][0]["items"][:1]]
    # (d) D has no row any more: its ID term is exactly 0 (its score is the content score) where
    # it had been recommended before, so it moved or went
    changed = 0
    for got, none in zip(got_b, plan["none_b"], strict=True):
        before = {x["item_id"]: x["score"] for x in none["items"]}
        after = {x["item_id"]: x["score"] for x in got["items"]}
        if d_id in before:
            changed += d_id not in after or abs(after[d_id] - before[d_id]) > 1e-3
    assert changed > 0
    assert metrics["threadrec_parameter_version"] == VERSION
    assert metrics['threadrec_parameter_records_total{outcome="corrupt"}'] == len(bad)
    assert metrics['threadrec_parameter_records_total{outcome="applied"}'] == 1
    assert metrics["threadrec_parameter_sync_lag_seconds_count"] == 2  # T's row and D's tombstone
    assert metrics["threadrec_parameter_replica_behind"] == 0


def test_a_worker_started_after_a_sync_serves_the_synced_rows_from_its_first_recommendation(
        kafka_broker, producer_factory, hybrid_checkpoint, data, tmp_path):
    prefix = f"wq-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    items, events = read_jsonl(data / "items.jsonl"), read_jsonl(data / "engagements.jsonl")
    first, _ = _split(events, 2)
    replay_to_broker([data / "items.jsonl"], k, progress=False)
    ensure_topics(k, [k.topic("parameters")])
    row = IdRow(np.full(8, 0.3, np.float32), np.ones(8, np.float32), 1.0, 1, VERSION)
    t_id, d_id = items[0]["item_id"], items[1]["item_id"]
    producer = producer_factory()
    _publish(producer, k.topic("parameters"), [(row_key("item", t_id), encode_row("item", t_id, row)),
                                               (row_key("item", d_id), None)])
    _send(producer, k.topic("engagements"), first)  # waiting in the topic before the worker starts
    log, stats = tmp_path / "worker.log", tmp_path / "stats.json"
    worker = _start(kafka_broker, prefix, hybrid_checkpoint, tmp_path / "w", log, stats=stats)
    try:
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), len(first),
                           timeout_s=150, abort=lambda: worker.poll() is not None)
        st = _wait_stats(stats, worker, lambda s: s["ready"])
    finally:
        stop_process(worker, timeout_s=30)
    assert len(recs) == len(first), log.read_text()[-3000:]
    assert {json.loads(r.value)["param_version"] for r in recs} == {VERSION}
    assert st["param_version"] == VERSION and st["param_rows"] == len(items) - 1
    assert (st["param_applied"], st["param_deleted"]) == (1, 1)
    assert st["param_lag_n"] == 0  # the catch-up at start measures downtime, not sync lag
    assert st["replica_wait_s"] is not None
