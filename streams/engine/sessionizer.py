"""Incremental sessionizer over a UserState: append one engagement, keep the last g sessions.

Rules (as model.examples.sessionize for training): an event opens a new session when the
user has none, when it comes more than gap_s after the previous event, or when the open
session already holds max_items. Only whole sessions are dropped (the oldest beyond g);
history items older than the kept sessions stay (up to max_history) for seen-item exclusion.
"""

from __future__ import annotations

import logging

import numpy as np

from store import KIND_CODES, UserState, session_content_key

logger = logging.getLogger(__name__)


def opens_session(state: UserState, ts: float, gap_s: float, max_items: int) -> bool:
    """Would an event at ts start a new session?"""
    if state.num_sessions == 0 or not state.item_ids:
        return True
    open_size = len(state.item_ids) - int(state.session_starts[-1])
    return ts - float(state.timestamps[-1]) > gap_s or open_size >= max_items


def append_event(state: UserState, item_id: str, ts: float, kind: str, *, gap_s: float,
                 max_items: int, max_sessions: int, max_history: int) -> bool:
    """Append an engagement in place; return True when it opened a new session."""
    opened = opens_session(state, ts, gap_s, max_items)
    if opened:
        state.session_starts = np.append(state.session_starts, len(state.item_ids)).astype(np.uint32)
    state.item_ids = [*state.item_ids, item_id]
    state.timestamps = np.append(state.timestamps, ts).astype(np.float64)
    state.kinds = np.append(state.kinds, KIND_CODES[kind]).astype(np.uint8)
    _trim(state, max_sessions, max_history)
    return opened


def _trim(state: UserState, max_sessions: int, max_history: int) -> None:
    """Drop sessions beyond the last max_sessions and history items no session or cap keeps."""
    if state.num_sessions > max_sessions:
        state.session_starts = state.session_starts[-max_sessions:]
    n = len(state.item_ids)
    cut = min(int(state.session_starts[0]), max(0, n - max_history))
    if cut > 0:
        state.item_ids = state.item_ids[cut:]
        state.timestamps = state.timestamps[cut:]
        state.kinds = state.kinds[cut:]
        state.session_starts = (state.session_starts.astype(np.int64) - cut).astype(np.uint32)


def sessions(state: UserState) -> list[list[str]]:
    """Item ids of each kept session, oldest first."""
    return [state.session_item_ids(i) for i in range(state.num_sessions)]


def session_keys(state: UserState) -> list[int]:
    """Content key of each kept session (equal keys: equal encoder input)."""
    return [session_content_key(s) for s in sessions(state)]
