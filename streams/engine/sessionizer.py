"""The session rule of model/sessions.py applied in place to a UserState, one engagement at a
time (the engine and bulk refresh); training and evaluation apply the same rule to lists."""

from __future__ import annotations

import logging

import numpy as np

from model.sessions import SessionRule, opens_session, trim
from store import KIND_CODES, ItemStore, UserState, session_content_key

logger = logging.getLogger(__name__)


def append_event(state: UserState, item_id: str, ts: float, kind: str, rule: SessionRule,
                 remember: int = 0) -> bool:
    """Append an engagement in place and trim; return True when it opened a new session.
    Trimmed items join state.earlier_items, bounded to `remember` distinct ones."""
    n = len(state.item_ids)
    last = float(state.timestamps[-1]) if n else None
    starts = state.session_starts.astype(np.int64).tolist()
    opened = opens_session(starts, n, last, ts, rule)
    if opened:
        starts.append(n)
    state.item_ids = [*state.item_ids, item_id]
    state.timestamps = np.append(state.timestamps, ts).astype(np.float64)
    state.kinds = np.append(state.kinds, KIND_CODES[kind]).astype(np.uint8)
    cut, starts = trim(starts, n + 1, rule)
    if cut:
        remember_earlier(state, state.item_ids[:cut], remember)
        state.item_ids = state.item_ids[cut:]
        state.timestamps = state.timestamps[cut:]
        state.kinds = state.kinds[cut:]
    state.session_starts = np.array(starts, np.uint32)
    return opened


def remember_earlier(state: UserState, dropped: list[str], remember: int) -> None:
    """Add `dropped` to earlier_items as the most recent (a repeated item moves to its latest
    sighting), bounded to `remember` (store/seen_items.py: fingerprints, the bound's rule)."""
    state.earlier_items = state.earlier_items.added(dropped, remember)


def sessions(state: UserState) -> list[list[str]]:
    """Item ids of each kept session, oldest first."""
    return [state.session_item_ids(i) for i in range(state.num_sessions)]


def session_keys(state: UserState, items: ItemStore) -> list[int]:
    """Content key of each kept session (equal keys: equal encoder input) from the items' current
    text: an edit re-keys every session holding the item, so each is encoded again at its next use."""
    return [session_key(s, items) for s in sessions(state)]


def session_key(item_ids: list[str], items: ItemStore) -> int:
    """One session's content key: its ids and each item's text key (a removed item: absent, as
    it is from the encoder input). Reads only the session's items, never the whole catalogue."""
    records = [items.get(i) for i in item_ids]
    return session_content_key(item_ids, [None if r is None else r.text_key for r in records])
