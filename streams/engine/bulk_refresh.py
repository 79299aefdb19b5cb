"""Bulk warm start / periodic refresh of user states on top of the per-event Engine.

The Engine refreshes a user on every engagement. Two jobs need something coarser:

- warm start: build each user's state from a history (e.g. the train period) with one
  encoder pass per kept session and one summary per user, batched across users, instead
  of replaying the history event by event;
- a stale refresh policy: engagements are only appended to the history (sessionizer
  bookkeeping) and the vectors are recomputed later in one batch (e.g. once per day).

Both are `Engine.refresh_users` (this mixin): append the given engagements with the engine's sessionizer, then
recompute sessions, summary and UPE once per user through the engine's own round functions,
so a refreshed state equals the state the engine reaches event by event (same sessions, same
float16 rounding; summary and UPE from the final history).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from store import SeenItems, UserState
from streams.engine.sessionizer import sessions
from streams.engine.types import Task, UserWork

logger = logging.getLogger(__name__)


class BulkRefresh:
    """The Engine's many-users-at-once methods (a mixin of Engine: it uses the engine's own
    bookkeeping and model rounds, so a refreshed state equals one reached event by event)."""

    def append_only(self, user_id: str, events: Sequence[Mapping[str, Any]],
                    state: UserState | None = None, observe: bool = True) -> UserState:
        """Append engagements to a user's state (no model work); the state is returned, not stored."""
        st = state if state is not None else (self.states.get(user_id) or UserState(user_id=user_id))
        for ev in events:
            item_id = str(ev["item_id"])
            if ev.get("kind") == "impression" or item_id not in self.items:
                continue
            self._apply_engagement(st, item_id, float(ev["ts"]), str(ev.get("kind") or "click"),
                                   observe=observe)
        return st

    def append_history(self, user_id: str, events: Sequence[Mapping[str, Any]],
                       observe: bool = True) -> UserState:
        """append_only, then store the state: a history kept (for exclusion) without vectors."""
        st = self.append_only(user_id, events, observe=observe)
        self.states.put(st)
        return st

    def refresh_users(self, events_by_user: Mapping[str, Sequence[Mapping[str, Any]]],
                      batch_users: int = 32, observe: bool = True) -> int:
        """Append each user's engagements, then recompute its vectors once; returns users refreshed.
        Users left with fewer than min_engagements engagements get the bookkeeping only."""
        works: dict[str, UserWork] = {}
        tasks: list[Task] = []
        for user_id, events in events_by_user.items():
            old = self.states.get(user_id)
            embs = dict(zip(old.session_keys.tolist(), old.session_embeddings, strict=True)) if old else {}
            st = self.append_only(user_id, events, old, observe)
            work = UserWork(st, embs, has_summary=False, dirty=True)
            works[user_id] = work
            if st.total_events >= self.config.min_engagements and st.num_sessions:
                st.events_since_summary = 0
                tasks.append(Task(len(tasks), user_id, self._keys(st), sessions(st), st.seen_items(),
                                  True, None, work))
        for k in range(0, len(tasks), batch_users):
            chunk = tasks[k:k + batch_users]
            ws = [t.work for t in chunk]
            fresh = self._rounds.encode_changed(chunk, ws)
            self._rounds.refresh_summaries(chunk, ws, fresh)
            self._rounds.user_codes(chunk, ws)
        for st in self._finalize(works).values():  # embeddings of kept sessions only, as events do
            self.states.put(st)
        return len(tasks)

    def stored_upe(self, user_id: str) -> np.ndarray | None:
        """The UPE (m, d) a stored user was last ranked with, recomputed from its stored session
        and global embeddings (the state keeps no codes); None before its first model round."""
        st = self.states.get(user_id)
        if st is None or not len(st.session_embeddings):
            return None
        return self._rounds.codes_of([st.session_embeddings], [st.global_embedding])[0]

    def rank_for(self, user_id: str, seen: set[str] | SeenItems) -> list[tuple[str, float]]:
        """Top-K for a stored user from its stored UPE, excluding `seen` (popularity when none)."""
        codes = self.stored_upe(user_id)
        if codes is None:
            return self.popular(self.config.top_k, seen)
        task = Task(0, user_id, [], [], seen, False, None)
        return self._rounds.rank([task], [codes])[0]
