"""Sessionizer rules: gap and size open sessions, only whole old sessions are dropped."""

from __future__ import annotations

from store import UserState
from streams.engine.sessionizer import append_event, session_keys, sessions

RULES = dict(gap_s=100.0, max_items=3, max_sessions=2, max_history=7)


def _feed(events: list[tuple[str, float]], **rules) -> tuple[UserState, list[bool]]:
    state, opened = UserState("u"), []
    for item, ts in events:
        opened.append(append_event(state, item, ts, "click", **{**RULES, **rules}))
    return state, opened


def test_gap_opens_a_session_and_equal_gap_does_not():
    state, opened = _feed([("a", 0), ("b", 100), ("c", 201)], max_sessions=9)
    assert opened == [True, False, True]
    assert sessions(state) == [["a", "b"], ["c"]]


def test_size_limit_closes_the_open_session():
    state, opened = _feed([(x, i) for i, x in enumerate("abcde")], max_sessions=9)
    assert opened == [True, False, False, True, False]
    assert sessions(state) == [["a", "b", "c"], ["d", "e"]]


def test_only_last_g_sessions_kept_but_older_items_stay_seen():
    state, _ = _feed([("a", 0), ("b", 500), ("c", 1000), ("d", 1001)])
    assert sessions(state) == [["b"], ["c", "d"]]
    assert state.item_ids == ["a", "b", "c", "d"]  # "a" still excluded from recommendations


def test_history_cap_drops_items_outside_the_kept_sessions_only():
    events = [(f"x{i}", i * 1000.0) for i in range(6)] + [("y", 6000.0), ("z", 6001.0)]
    state, _ = _feed(events, max_history=3)
    assert sessions(state) == [["x5"], ["y", "z"]]
    assert state.item_ids == ["x5", "y", "z"]
    assert state.session_starts.tolist() == [0, 1]


def test_session_keys_change_only_for_the_session_that_grew():
    state, _ = _feed([("a", 0), ("b", 500)])
    before = session_keys(state)
    append_event(state, "c", 510, "click", **RULES)
    after = session_keys(state)
    assert after[0] == before[0] and after[1] != before[1]
