"""What a sync carries: exactly the rows the publish rule selects (engaged and history rows, new
and removed rows, negatives past the relative threshold), as vectors without optimizer slots;
its size in bytes and rows; a restarted trainer's first sync publishes every changed row."""

from __future__ import annotations

import asyncio

import numpy as np

from store import decode_row, parse_row_key
from store.id_row import SERVED_FORMAT
from streams.trainer.publish_rule import PublishRule
from streams.trainer.publisher import Publisher
from tests.streams.trainer.test_trainer_learner import chain_events, make_learner


class _Producer:
    """Collects what a sync sends (the broker path is test_trainer_broker's)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None]] = []

    async def send(self, topic: str, key: bytes, value: bytes | None):
        self.sent.append((key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def _publisher(learner, tmp_path) -> tuple[Publisher, _Producer]:
    producer = _Producer()
    pub = Publisher(producer, "t-parameters", learner.memory, tmp_path / "hw", learner.publish_rule)
    pub.resume_version(0)
    return pub, producer


def _expected(learner, events, before: dict[str, np.ndarray], threshold: float) -> set[str]:
    """The rule by hand: every engaged item with a row and its user's history rows before it,
    plus any other row whose vector moved past the threshold."""
    must, users = set(), {}
    for event, _, _ in events:
        hist = [i for i in users.get(event["user_id"], []) if i in before][-10:]
        if hist and event["item_id"] in before:
            must |= {event["item_id"], *hist}
        users.setdefault(event["user_id"], []).append(event["item_id"])
    moved = {i for i, v in before.items() if i not in must and
             np.linalg.norm(learner.memory.get_row(i).vector - v) > threshold * np.linalg.norm(v)}
    return must | moved


def test_a_sync_holds_exactly_the_selected_rows_without_slots(tmp_path):
    learner = make_learner(tmp_path, negatives=12, learn_block=4, lr=0.05, publish_threshold=0.05)
    pub, producer = _publisher(learner, tmp_path)
    before = {i: learner.memory.get_row(i).vector.copy() for i in learner.memory.ids()}
    events = chain_events(6)
    learner.learn_all(events)
    records = pub.records()
    want = _expected(learner, events, before, 0.05)
    got = {parse_row_key(k)[1] for k, _ in records}
    assert got == want and pub.last["held_back"] > 0 and len(want) > 4  # the rule held some back
    touched_negatives = {i for i in before if i not in want
                         and not np.array_equal(learner.memory.get_row(i).vector, before[i])}
    assert touched_negatives  # held back: moved, but under the threshold
    for _, value in records:
        assert value[4] == SERVED_FORMAT
        _, item, row = decode_row(value)
        assert np.array_equal(row.vector, learner.memory.get_row(item).vector) and not row.accum.any()
    asyncio.run(pub.send(records, 1))
    assert producer.sent == records and pub.last["rows"] == len(records)
    assert pub.last["bytes"] == sum(len(k) + len(v) for k, v in records) == pub.bytes_sent


def test_a_held_back_negative_goes_out_once_its_drift_from_the_published_vector_passes(tmp_path):
    rule = PublishRule(0.1)
    ref = np.array([1.0, 0.0], np.float32)
    now = {"a": ref + [0.06, 0.0]}
    rule.stepped([], ["a"], lambda ids: np.stack([ref for _ in ids]))
    assert rule.select(["a"], now.get).held_back == ["a"]
    now["a"] = ref + [0.08, 0.08]  # 0.113 from the reference, though 0.085 from the last step
    rule.stepped([], ["a"], lambda ids: np.stack([now["a"] for _ in ids]))  # reference kept
    assert rule.select(["a"], now.get).publish == ["a"] and "a" not in rule.reference


def test_threshold_zero_publishes_every_changed_row_and_a_restart_everything_first(tmp_path):
    learner = make_learner(tmp_path, negatives=12, learn_block=4, publish_threshold=0.0)
    pub, _ = _publisher(learner, tmp_path)
    before = {i: learner.memory.get_row(i).vector.copy() for i in learner.memory.ids()}
    learner.learn_all(chain_events(4))
    changed = {i for i, v in before.items() if not np.array_equal(learner.memory.get_row(i).vector, v)}
    assert {parse_row_key(k)[1] for k, _ in pub.records()} == changed and pub.last["held_back"] == 0
    restarted = make_learner(tmp_path / "r", negatives=12, publish_threshold=0.5)
    restarted.publish_rule.publish_all = True  # as Trainer._open sets it after a restore
    pub2, _ = _publisher(restarted, tmp_path / "r")
    before = {i: restarted.memory.get_row(i).vector.copy() for i in restarted.memory.ids()}
    restarted.learn_all(chain_events(4))
    changed = {i for i, v in before.items() if not np.array_equal(restarted.memory.get_row(i).vector, v)}
    assert {parse_row_key(k)[1] for k, _ in pub2.records()} == changed
    restarted.learn_all(chain_events(4, start=100))
    pub2.records()
    assert pub2.last["held_back"] > 0  # the rule applies again from the second sync


def test_expired_rows_go_out_as_tombstones(tmp_path):
    learner = make_learner(tmp_path, ttl_s=100.0)
    pub, _ = _publisher(learner, tmp_path)
    learner.stamp_unseen(1000.0)
    learner.learn(*({"user_id": "u", "item_id": "i1", "ts": 1150.0, "kind": "click"}, 0, 0))
    gone = learner.expire(1150.0)
    records = dict(pub.records())
    assert all(records[b"item/" + i.encode()] is None for i in gone)
    asyncio.run(pub.send(list(records.items()), 1))
    assert pub.last["tombstones"] == len(gone) and pub.last["rows"] == 0
