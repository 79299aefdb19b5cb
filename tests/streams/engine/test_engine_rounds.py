"""Engine rounds: a user's consecutive engagements in one micro-batch share a model round, and
the result is what processing them one batch at a time gives (an inline summary refresh is the
only thing a later engagement of the same user must wait for)."""

from __future__ import annotations

import numpy as np
import pytest

from streams.engine.config import RefreshPolicy
from streams.engine.engine import _rounds
from streams.engine.types import Task


def _task(index: int, user: str, refresh: bool = False) -> Task:
    return Task(index, user, [], [], set(), refresh, None)


def _shape(rounds: list[list[Task]]) -> list[list[tuple[str, int]]]:
    return [[(t.user_id, t.index) for t in r] for r in rounds]


def test_without_inline_summaries_every_task_shares_one_round():
    queued = {"a": [_task(0, "a", True), _task(2, "a"), _task(3, "a", True)], "b": [_task(1, "b")]}
    assert _shape(_rounds(queued, inline=False)) == [[("a", 0), ("b", 1), ("a", 2), ("a", 3)]]


def test_an_inline_refresh_sits_in_a_round_of_its_own_for_its_user():
    a = [_task(0, "a"), _task(1, "a"), _task(2, "a", True), _task(3, "a"), _task(5, "a", True)]
    queued = {"a": a, "b": [_task(4, "b", True), _task(6, "b")]}
    assert _shape(_rounds(queued, inline=True)) == [
        [("a", 0), ("a", 1), ("b", 4)], [("a", 2), ("b", 6)], [("a", 3)], [("a", 5)]]


@pytest.mark.parametrize("lane", [False, True])
def test_one_batch_equals_one_batch_per_engagement(engine_factory, events, lane):
    """Same recommendations and states whether a user's engagements come together or apart."""
    opts = dict(summary_lane=lane, refresh=RefreshPolicy.parse("every_n:3"))
    together, apart = engine_factory(**opts), engine_factory(**opts)
    batch = events[:30]
    got = together.process_engagements(batch)
    want = [apart.process_engagements([e])[0] for e in batch]
    for g, w in zip(got, want, strict=True):
        gi, wi = g.recommendation["items"], w.recommendation["items"]
        assert [i["item_id"] for i in gi] == [i["item_id"] for i in wi]
        np.testing.assert_allclose([i["score"] for i in gi], [i["score"] for i in wi], atol=1e-4)
    for user in {e["user_id"] for e in batch}:
        a, b = together.states.get(user), apart.states.get(user)
        assert a.summary == b.summary and a.total_events == b.total_events
        np.testing.assert_allclose(together.stored_upe(user), apart.stored_upe(user), atol=2e-3)
