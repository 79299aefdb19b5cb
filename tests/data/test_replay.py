"""Replay: send order (unit) and keys/values/order read back from the real test broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict

import pytest

from streams.cli import main
from streams.data.records import Engagement, Item
from streams.kafka.clients import consume_all
from streams.kafka.replay import Pacer, load_replay, plan, replay_to_broker
from streams.kafka.settings import KafkaSettings
from tests.data.helpers import write_jsonl


def test_plan_items_before_engagements_that_need_them():
    items = [Item("early", "E", ts=0.0), Item("tie", "T", ts=5.0), Item("late", "L", ts=50.0),
             Item("unused", "U", ts=99.0)]
    engs = [Engagement("u", "early", 1.0, "click"), Engagement("u", "tie", 5.0, "click"),
            Engagement("v", "late", 6.0, "click")]
    sent = [(ts, getattr(r, "user_id", None), r.item_id) for ts, r in plan(items, engs)]
    assert sent == [(1.0, None, "early"), (1.0, "u", "early"), (5.0, None, "tie"), (5.0, "u", "tie"),
                    (5.0, None, "late"), (6.0, "v", "late"), (99.0, None, "unused")]
    limited = [r.item_id for _, r in plan(items, engs, limit=1)]
    assert limited == ["early", "early"]


def _paced_seconds(pacer: Pacer, stamps) -> float:
    async def run() -> None:
        for ts in stamps:
            await pacer.wait(ts)

    t0 = time.monotonic()
    asyncio.run(run())
    return time.monotonic() - t0


def test_pacer_rate_and_speed():
    assert 0.09 <= _paced_seconds(Pacer(rate=100), [0.0] * 11) < 1.0
    # 10 s of event time at 100x = 0.1 s
    assert 0.09 <= _paced_seconds(Pacer(speed=100), [1000.0, 1005.0, 1010.0]) < 1.0


def _prepared(d):
    items = [{"item_id": f"i{n}", "title": f"T{n}", "body": "", "category": "c", "ts": float(n),
              "genres": ["x"]} for n in range(6)]
    engs = [{"user_id": f"u{n % 3}", "item_id": f"i{(n * 5) % 6}", "ts": float(n), "kind": "click",
             "rating": n} for n in range(30)]
    write_jsonl(d / "items.jsonl", items)
    write_jsonl(d / "engagements.jsonl", engs)
    write_jsonl(d / "test.jsonl", engs[-3:])
    return items, engs


def _settings(kafka_broker, prefix):
    return KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind,
                         topic_prefix=prefix, partitions=3)


@pytest.mark.broker
def test_replay_keys_values_and_per_key_order(kafka_broker, tmp_path):
    items, engs = _prepared(tmp_path)
    prefix = f"rp-{uuid.uuid4().hex[:8]}-"
    report = replay_to_broker(tmp_path, _settings(kafka_broker, prefix), progress=False)
    assert report.counts == {f"{prefix}items": 6, f"{prefix}engagements": 30}
    got_items = consume_all(kafka_broker.bootstrap, f"{prefix}items", 6)
    got_engs = consume_all(kafka_broker.bootstrap, f"{prefix}engagements", 30)
    assert {r.partition for r in got_engs} <= {0, 1, 2} and len({r.partition for r in got_engs}) > 1
    assert sorted(r.key.decode() for r in got_items) == sorted(i["item_id"] for i in items)
    for r in got_items:
        value = json.loads(r.value)
        assert value == {k: v for k, v in items[int(r.key.decode()[1:])].items() if k != "genres"}
    per_key = defaultdict(list)
    for r in sorted(got_engs, key=lambda r: (r.partition, r.offset)):
        value = json.loads(r.value)
        assert r.key.decode() == value["user_id"]
        assert set(value) == {"user_id", "item_id", "ts", "kind"}  # extra `rating` dropped
        per_key[value["user_id"]].append(value["ts"])
    for user, ts in per_key.items():
        assert ts == [e["ts"] for e in engs if e["user_id"] == user]


@pytest.mark.broker
def test_cli_replay_split_limit_keep_extra(kafka_broker, tmp_path, capsys):
    _, engs = _prepared(tmp_path)
    prefix = f"rp-{uuid.uuid4().hex[:8]}-"
    rc = main(["replay", str(tmp_path), "--from-split", "test", "--limit", "2", "--keep-extra",
               "--rate", "1000", "--no-progress", "--bootstrap", kafka_broker.bootstrap,
               "--broker-kind", kafka_broker.kind, "--topic-prefix", prefix])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"sent 2 to {prefix}engagements" in out and "events/s" in out
    got = consume_all(kafka_broker.bootstrap, f"{prefix}engagements", 2)
    values = sorted((json.loads(r.value) for r in got), key=lambda v: v["ts"])
    assert values == engs[-3:-1]  # first two test engagements, rating kept
    got_items = consume_all(kafka_broker.bootstrap, f"{prefix}items", 6, timeout_s=5)
    # all items published by then (ts <= 28) and nothing after the limit
    assert sorted(r.key.decode() for r in got_items) == [f"i{n}" for n in range(6)]


def test_load_replay_from_files_any_order(tmp_path):
    _prepared(tmp_path)
    items, engs = load_replay([tmp_path / "engagements.jsonl", tmp_path / "items.jsonl"])
    assert [i.item_id for i in items] == [f"i{n}" for n in range(6)]
    assert [e.ts for e in engs] == [float(n) for n in range(30)]
    assert engs[3].extra == {"rating": 3}


def test_items_and_parameters_topics_are_created_compacted():
    from streams.kafka.replay import new_topics

    k = KafkaSettings(topic_prefix="t-", partitions=3).decided(brokers=1)
    names = [k.topic("items"), k.topic("engagements"), k.topic("parameters")]
    specs = {t.name: t for t in new_topics(k, names)}
    insync = {"min.insync.replicas": "1"}
    assert specs["t-items"].topic_configs == {"cleanup.policy": "compact", **insync}
    assert specs["t-parameters"].topic_configs == {"cleanup.policy": "compact", **insync}
    assert specs["t-engagements"].topic_configs == insync
    assert {t.num_partitions for t in specs.values()} == {3}


def test_topic_errors_become_one_line_broker_errors():
    from streams.errors import BrokerError
    from streams.kafka.replay import _check_created

    _check_created([("a", 0, None), ("b", 36, "Topic with this name already exists.")])
    with pytest.raises(BrokerError, match="cannot create topic c: .*InvalidReplicationFactor"):
        _check_created([("c", 38, "only 1 broker")])


def test_unreachable_broker_is_one_line_broker_error(tmp_path):
    from streams.errors import BrokerError

    _prepared(tmp_path)
    k = KafkaSettings(bootstrap="127.0.0.1:1")
    with pytest.raises(BrokerError, match="cannot reach Kafka at 127.0.0.1:1"):
        replay_to_broker(tmp_path, k, progress=False)
    with pytest.raises(BrokerError, match="cannot reach Kafka at 127.0.0.1:1"):
        replay_to_broker(tmp_path, k, progress=False, create_topics=False)
