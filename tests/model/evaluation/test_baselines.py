"""Baselines are leak-free: recent popularity only counts train engagements before the target."""

from __future__ import annotations

import numpy as np

from model.evaluation.baselines import CoOccurrence, DecayedPopularity

DAY = 86400.0


def test_recent_popularity_uses_only_engagements_before_the_target():
    train = [{"user_id": "a", "item_id": "x", "ts": 0.0},
             {"user_id": "b", "item_id": "x", "ts": 1 * DAY},
             {"user_id": "c", "item_id": "y", "ts": 10 * DAY},  # after u1's target
             {"user_id": "d", "item_id": "y", "ts": 10 * DAY}]
    rp = DecayedPopularity(["x", "y"], train, days=14, half_life_days=3, ref_ts={"u1": 2 * DAY, "u2": 11 * DAY})
    s = rp.scores(["u1", "u2"], ["x", "y"])
    assert s[0, 1] == 0.0 and s[0, 0] > 0  # nothing from the future
    assert s[1, 1] > s[1, 0]  # y is the recent favourite at u2's time
    np.testing.assert_allclose(s[0, 0], 0.5 ** (2 / 3) + 0.5 ** (1 / 3))
    # a target at the same second as an engagement does not count that engagement
    assert DecayedPopularity(["x", "y"], train, ref_ts={"u": 10 * DAY}).scores(["u"], ["y"])[0, 0] == 0.0


def test_cooccurrence_scores_from_history_only():
    train = [{"user_id": "a", "item_id": "x", "ts": 0}, {"user_id": "a", "item_id": "y", "ts": 1},
             {"user_id": "b", "item_id": "x", "ts": 0}, {"user_id": "b", "item_id": "z", "ts": 1}]
    co = CoOccurrence(["x", "y", "z"], train, {"u": ["x"], "v": []})
    s = co.scores(["u", "v"], ["x", "y", "z"])
    assert s[0, 0] == 0.0 and s[0, 1] > 0 and s[0, 2] > 0  # no self-similarity
    assert not s[1].any()  # empty history, empty scores
