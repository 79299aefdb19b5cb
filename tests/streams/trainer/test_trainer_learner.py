"""The trainer's per-event logic without a broker: it learns, deterministically, admits and
expires rows, uses impressions as negatives, and its histories snapshot with a checksum."""

from __future__ import annotations

import numpy as np
import pytest

from model.training.tiny import write_id_half
from store import MemoryKV, StateCodecError
from streams.trainer.config import TrainerSettings
from streams.trainer.histories import Histories, History
from streams.trainer.learner import CheckpointHalf, OnlineLearner

ITEMS = [f"i{k}" for k in range(40)]


def make_learner(tmp_path, **over) -> OnlineLearner:
    path = write_id_half(tmp_path / "ckpt", ITEMS, rowless=frozenset({"i38", "i39"}))
    settings = TrainerSettings(checkpoint=path, data_dir=tmp_path / "t", **{"negatives": 10, "learn_block": 4, **over})
    half = CheckpointHalf.load(path, settings)
    from store import IdMemory

    memory = IdMemory(MemoryKV(), half.config)
    half.write_rows(memory)
    return OnlineLearner(memory, half.tower, Histories(MemoryKV(), 10, 5), settings, half.fusion)


def chain_events(users: int, start: int = 0) -> list[tuple[dict, int, int]]:
    """Each user engages i0, i1, i2, i3 in turn: a planted next-item chain."""
    out, off = [], start
    for u in range(users):
        for step, item in enumerate(["i0", "i1", "i2", "i3"]):
            out.append(({"user_id": f"u{u}", "item_id": item, "ts": 1000.0 + 10 * u + step, "kind": "click"}, 0, off))
            off += 1
    return out


def score(learner: OnlineLearner, history: list[str], item: str) -> float:
    rows = learner.memory.lookup(history)[0]
    h = learner.tower.user_vectors_of_rows([rows])[0]
    return float(learner.memory.lookup([item])[0][0] @ h)


@pytest.mark.slow  # trains a model (180 steps)
def test_learning_raises_the_planted_next_item_over_the_rest(tmp_path):
    learner = make_learner(tmp_path, lr=0.05)
    before = score(learner, ["i0", "i1"], "i2") - np.mean([score(learner, ["i0", "i1"], f"i{k}") for k in range(5, 30)])
    learner.learn_all(chain_events(60))
    after = score(learner, ["i0", "i1"], "i2") - np.mean([score(learner, ["i0", "i1"], f"i{k}") for k in range(5, 30)])
    assert learner.stats.steps == 60 * 3  # the first engagement of a user has no history rows
    assert after > before + 1.0
    assert np.mean(learner.stats.recent[-30:]) < np.mean(learner.stats.recent[:30])


def test_same_log_same_table(tmp_path):
    a, b = make_learner(tmp_path / "a"), make_learner(tmp_path / "b")
    events = chain_events(10)
    a.learn_all(events)
    b.learn_all(events)
    for item in ITEMS[:38]:
        assert a.memory.get_row(item) == b.memory.get_row(item)


def test_a_block_is_one_step_so_slices_cut_at_block_bounds_learn_the_whole_logs_table(tmp_path):
    """Slices that keep blocks whole (what the loop hands over) give the table of the whole log;
    slices that cut a block take more, smaller steps and a different table (why the loop waits)."""
    whole, aligned, cut = (make_learner(tmp_path / n, min_count=2) for n in ("w", "a", "c"))
    events = chain_events(8) + [({"user_id": "u1", "item_id": "i39", "ts": 5000.0 + k, "kind": "click"}, 0, 100 + k)
                                for k in range(3)]  # an admission inside a block
    whole.learn_all(events)
    for k in range(0, 32, 8):
        aligned.learn_all(events[k:k + 8])
    aligned.learn_all(events[32:])
    for e in events:
        cut.learn(*e)
    assert whole.stats.steps == aligned.stats.steps == cut.stats.steps and whole.stats.admitted == 1
    for item in ITEMS:
        assert whole.memory.get_row(item) == aligned.memory.get_row(item)
    assert any(whole.memory.get_row(i) != cut.memory.get_row(i) for i in ITEMS[:4])


def test_a_block_moves_shared_rows_about_as_far_as_its_engagements_one_by_one(tmp_path):
    """Rows that several engagements of a block use (here i0..i3, every user's chain) move about
    as far in one block step as in steps one by one: the accumulators grow by each engagement's
    squared gradient, not by the square of their sum (that held the step near lr, ~0.27x here,
    and cost the ML-100K demo its online lift)."""
    def moved(block: int) -> np.ndarray:
        learner = make_learner(tmp_path / str(block), learn_block=block)
        before = [learner.memory.get_row(i).vector.copy() for i in ITEMS[:4]]
        learner.learn_all(chain_events(8))  # 32 engagements: one block of 32, or 32 steps
        return np.array([np.linalg.norm(learner.memory.get_row(i).vector - v) for i, v in zip(ITEMS[:4], before, strict=True)])

    one_by_one, batched = moved(1), moved(32)
    assert (batched > 0.5 * one_by_one).all() and (batched < 1.5 * one_by_one).all()


def test_new_item_is_admitted_after_min_count_and_then_learned(tmp_path):
    learner = make_learner(tmp_path, min_count=2)
    ev = lambda u, item, off: ({"user_id": u, "item_id": item, "ts": 2000.0 + off, "kind": "click"}, 0, off)  # noqa: E731
    learner.learn_all([ev("a", "i1", 0), ev("a", "i39", 1)])
    assert "i39" not in learner.memory and "i39" not in learner.catalogue
    learner.learn(*ev("b", "i39", 2))
    assert "i39" in learner.memory and "i39" in learner.catalogue
    assert learner.stats.admitted == 1 and "i39" in learner.memory.drain_touched()
    first = learner.memory.get_row("i39").vector.copy()
    learner.learn_all([ev("c", "i2", 3), ev("c", "i39", 4)])
    assert not np.array_equal(first, learner.memory.get_row("i39").vector)


def test_skipped_impressions_are_hard_negatives(tmp_path):
    learner = make_learner(tmp_path, negatives=0)
    before = learner.memory.get_row("i7").vector.copy()
    learner.learn_all([({"user_id": "u", "item_id": "i1", "ts": 1.0, "kind": "click"}, 0, 0),
                       ({"user_id": "u", "item_id": "i7", "ts": 2.0, "kind": "impression"}, 0, 1),
                       ({"user_id": "u", "item_id": "i2", "ts": 3.0, "kind": "click"}, 0, 2)])
    assert learner.stats.impressions == 1 and learner.stats.steps == 1
    assert not np.array_equal(before, learner.memory.get_row("i7").vector)
    assert learner.histories.get("u").impressions == ["i7"]


def test_expiry_removes_idle_rows_from_the_table_and_the_negatives(tmp_path):
    learner = make_learner(tmp_path, ttl_s=100.0)
    learner.stamp_unseen(1000.0)
    learner.learn(*({"user_id": "u", "item_id": "i1", "ts": 1150.0, "kind": "click"}, 0, 0))
    gone = learner.expire(1150.0)
    assert "i1" not in gone and "i2" in gone and len(gone) == 37
    assert learner.catalogue == ["i1"] and "i2" not in learner.memory
    assert "i2" in learner.memory.drain_touched()  # published as a tombstone


def test_history_snapshot_round_trip_and_checksum(tmp_path):
    h = Histories(MemoryKV(), 3, 2)
    h.put("ü", History(["a", "b", "c", "d"], ["x", "y", "z"]))
    h.snapshot(tmp_path / "h.jsonl")
    other = Histories(MemoryKV(), 3, 2)
    other.put("stale", History(["q"], []))
    assert other.restore(tmp_path / "h.jsonl") == 1
    assert other.get("ü") == History(["b", "c", "d"], ["y", "z"]) and other.get("stale") == History()
    data = (tmp_path / "h.jsonl").read_bytes().replace(b"c", b"C", 1)
    (tmp_path / "h.jsonl").write_bytes(data)
    with pytest.raises(StateCodecError):
        other.restore(tmp_path / "h.jsonl")


def test_a_backlog_is_learned_in_slices_with_a_sync_whenever_one_is_due(tmp_path):
    """A large fetch must not push a sync past its interval: with an event clock of 60 s and
    engagements 100 s apart, every block of the backlog ends with a sync of what it learned."""
    import asyncio

    from streams.trainer import loop

    path = write_id_half(tmp_path / "ckpt", ITEMS)
    trainer = loop.Trainer(TrainerSettings(checkpoint=path, data_dir=tmp_path / "t", negatives=10,
                                           sync_clock="event", sync_every_s=60.0, learn_block=32))
    synced: list[int] = []

    async def sync() -> None:  # the publish side is the broker tests' business
        synced.append(trainer.learner.stats.engagements)
        trainer.meta.sync_event_ts = trainer.max_ts

    trainer._sync = sync
    backlog = [({"user_id": f"u{k % 7}", "item_id": f"i{k % 30}", "ts": 1000.0 + 100 * k, "kind": "click"}, 0, k)
               for k in range(100)]
    asyncio.run(trainer._learn(backlog))
    assert trainer.learner.stats.engagements == 100
    assert synced == [32, 64, 96, 100]
    assert trainer.max_ts == 1000.0 + 100 * 99


def test_user_histories_expire_by_the_workers_rule_and_the_sweep_bounds_them(tmp_path):
    """An event past user_ttl_s after the user's last starts from an empty history (as on a
    worker); the sweep drops the users idle past the TTL, oldest first, and keeps the rest."""
    learner = make_learner(tmp_path, user_ttl_s=100.0)
    ev = lambda u, item, ts, off: ({"user_id": u, "item_id": item, "ts": ts, "kind": "click"}, 0, off)  # noqa: E731
    learner.learn_all([ev("a", "i1", 1000.0, 0), ev("a", "i2", 1050.0, 1), ev("b", "i3", 1060.0, 2),
                       ev("c", "i4", 1200.0, 3)])
    assert learner.histories.get("a").items == ["i1", "i2"]
    assert learner.histories.expire(1200.0 - 100.0) == 2 and len(learner.histories) == 1
    assert learner.histories.get("a") == learner.histories.get("b") == History()
    learner.learn(*ev("c", "i5", 1250.0, 4))
    learner.learn(*ev("c", "i6", 1400.0, 5))  # 150 s idle: starts over
    assert learner.histories.get("c").items == ["i6"]
    h = Histories(MemoryKV(), 3, 2)
    learner.histories.snapshot(tmp_path / "h.jsonl")
    assert h.restore(tmp_path / "h.jsonl") == 1 and h.expire(1399.0) == 0 and h.expire(1401.0) == 1
