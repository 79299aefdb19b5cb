"""A corpus of bad records through a real worker: each has its stated outcome (a dead letter
with that reason), none vanishes, every valid engagement around them is recommended, and the
worker stays up."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from model.records import read_jsonl
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import replay_to_broker
from tests.fixtures.worker import broker_settings as _settings
from tests.fixtures.worker import start_worker as _start

pytestmark = pytest.mark.broker
NOW = time.time()


def _eng(**over) -> bytes:
    base = {"user_id": "ux", "item_id": "i1", "ts": 1.0e6 + 5, "kind": "click"}
    base.update(over)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


# (case, topic, key, value, expected reason); "ux" is the key unless said otherwise
ENGAGEMENTS = [
    ("not JSON", b"ux", b"{not json", "malformed JSON"),
    ("not UTF-8", b"ux", b"\xff\xfe\xfd", "malformed JSON"),
    ("JSON array", b"ux", b"[1, 2, 3]", "wrong type"),
    ("JSON string", b"ux", b'"click"', "wrong type"),
    ("null value", b"ux", None, "malformed JSON"),
    ("no user_id", b"ux", _eng(user_id=...), "missing field"),
    ("no item_id", b"ux", _eng(item_id=...), "missing field"),
    ("no ts", b"ux", _eng(ts=...), "missing field"),
    ("no kind", b"ux", _eng(kind=...), "missing field"),
    ("ts a string", b"ux", _eng(ts="yesterday"), "wrong type"),
    ("ts a bool", b"ux", _eng(ts=True), "wrong type"),
    ("ts NaN", b"ux", b'{"user_id": "ux", "item_id": "i1", "ts": NaN, "kind": "click"}',
     "wrong type"),
    ("ts Infinity", b"ux", b'{"user_id": "ux", "item_id": "i1", "ts": Infinity, "kind": "click"}',
     "wrong type"),
    ("ts negative", b"ux", _eng(ts=-5.0), "bad ts"),
    ("ts zero", b"ux", _eng(ts=0), "bad ts"),
    ("ts 9.9e15", b"ux", _eng(ts=9.9e15), "bad ts"),
    ("ts two days ahead", b"ux", _eng(ts=NOW + 2 * 86_400), "bad ts"),
    ("ts far ahead of the partition", b"ux", _eng(ts=1.0e6 + 400 * 86_400), "bad ts"),
    ("user_id a number", b"7", _eng(user_id=7), "wrong type"),
    ("user_id empty", b"", _eng(user_id=""), "wrong type"),
    ("item_id blank", b"ux", _eng(item_id="   "), "wrong type"),
    ("kind unknown", b"ux", _eng(kind="purchase"), "bad kind"),
    ("kind oversize", b"ux", _eng(kind="k" * 40), "oversize field"),
    ("user_id 300 bytes", b"u" * 300, _eng(user_id="u" * 300), "oversize field"),
    ("item_id 300 bytes", b"ux", _eng(item_id="i" * 300), "oversize field"),
    ("user_id 600 kB", b"u" * 600_000, _eng(user_id="u" * 600_000), "oversize payload"),
    ("payload 70 kB of extras", b"ux", _eng(note="n" * 70_000), "oversize payload"),
    ("payload 2 MB", b"ux", b"x" * 2_000_000, "oversize payload"),
    ("key is another user", b"uy", _eng(), "key mismatch"),
    ("no key", None, _eng(), "key mismatch"),
    ("unknown item", b"ux", _eng(item_id="never-in-the-catalogue"), "unknown item"),
]
ITEMS = [
    ("item not JSON", b"ib", b"{oops", "malformed JSON"),
    ("item without title", b"ib", json.dumps({"item_id": "ib", "ts": 1}).encode(), "missing field"),
    ("item body 20 kB", b"ib", json.dumps({"item_id": "ib", "title": "t", "body": "b" * 20_000,
                                           "ts": 1}).encode(), "oversize field"),
    ("item ts negative", b"ib", json.dumps({"item_id": "ib", "title": "t", "ts": -1}).encode(),
     "bad ts"),
]


def test_every_bad_record_has_its_outcome_and_the_worker_stays_up(
        kafka_broker, producer_factory, tiny_checkpoint, prepared, tmp_path):
    assert len(ENGAGEMENTS) + len(ITEMS) >= 25
    prefix = f"bc-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    replay_to_broker([prepared / "items.jsonl"], k, progress=False)
    producer = producer_factory(max_request_size=8_000_000)
    where = {}  # (topic, partition, offset) -> expected reason
    for case, key, value, reason in ITEMS:
        md = producer.send(k.topic("items"), key=key, value=value).get(timeout=30)
        where[(md.topic, md.partition, md.offset)] = (case, reason)
    valid = [dict(e, user_id="ux") for e in read_jsonl(prepared / "engagements.jsonl")[:len(ENGAGEMENTS)]]
    for n, (case, key, value, reason) in enumerate(ENGAGEMENTS):
        ok = json.dumps({**valid[n], "ts": 1.0e6 + n}).encode()
        producer.send(k.topic("engagements"), key=b"ux", value=ok)
        md = producer.send(k.topic("engagements"), key=key, value=value).get(timeout=30)
        where[(md.topic, md.partition, md.offset)] = (case, reason)
    producer.flush()
    log = tmp_path / "worker.log"
    worker = _start(kafka_broker, prefix, tiny_checkpoint, tmp_path / "w", log)
    try:
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), len(ENGAGEMENTS),
                           timeout_s=150, abort=lambda: worker.poll() is not None)
        dead = consume_all(kafka_broker.bootstrap, k.topic("deadletter"), len(where), timeout_s=60)
        alive = worker.poll() is None
    finally:
        stop_process(worker, timeout_s=30)
    assert alive, log.read_text()[-3000:]
    assert len(recs) == len(ENGAGEMENTS), log.read_text()[-3000:]
    got = {}
    for d in dead:
        letter = json.loads(d.value)
        got[(letter["source_topic"], letter["partition"], letter["offset"])] = letter["error"]
    outcomes = {case: got.get(pos, "nothing (vanished)").split(":")[0]
                for pos, (case, _) in where.items()}
    assert outcomes == {case: reason for case, reason in where.values()}
    assert len(dead) == len(where)  # one dead letter each, nothing else
