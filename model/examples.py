"""Training examples: sessionised histories, next-item positives, sampled negatives."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model.config import EmbSumConfig
from model.sessions import SessionHistory, SessionRule, sessionize


@dataclass
class Example:
    """One user state: sessions (lists of item ids, oldest first) and the next engaged item."""

    user_id: str
    sessions: list[list[str]]
    positive: str


def user_sessions(events: Sequence[dict[str, Any]], cfg: EmbSumConfig) -> list[list[str]]:
    """The kept sessions of a user's time-ordered engagements (the rule in model/sessions.py,
    the same one the online engine applies event by event)."""
    return sessionize(((str(e["item_id"]), float(e["ts"])) for e in events), SessionRule.of(cfg))


def history_chunks(sessions: list[list[str]], cfg: EmbSumConfig) -> list[list[str]]:
    """What the encoder sees: the sessions themselves, or (history_mode one_chunk) one chunk."""
    if cfg.history_mode == "one_chunk":
        return [[i for s in sessions for i in s]] if sessions else []
    if cfg.history_mode != "sessions":
        raise ValueError(f"unknown history_mode {cfg.history_mode!r} (sessions or one_chunk)")
    return sessions


def build_examples(user_events: dict[str, list[dict[str, Any]]], cfg: EmbSumConfig,
                   min_history: int = 1) -> list[Example]:
    """For each user and each target position t >= min_history: history = events before t."""
    rule, out = SessionRule.of(cfg), []
    for user, events in user_events.items():
        hist = SessionHistory.empty(rule)  # grows one event at a time: O(events), not O(events^2)
        for t, e in enumerate(events):
            if t >= min_history:
                out.append(Example(user, hist.sessions(), str(e["item_id"])))
            hist.append(str(e["item_id"]), float(e["ts"]))
    return out


class NegativeSampler:
    """Uniform negatives from items the user never engaged with (in the given events)."""

    def __init__(self, item_ids: Sequence[str], user_events: dict[str, list[dict[str, Any]]], seed: int = 0):
        self.item_ids = list(item_ids)
        self.engaged = {u: {str(e["item_id"]) for e in ev} for u, ev in user_events.items()}
        self.rng = random.Random(seed)

    def sample(self, user_id: str, r: int) -> list[str]:
        """r distinct item ids not engaged by the user (fewer only if the catalogue is tiny)."""
        seen = self.engaged.get(user_id, set())
        out: list[str] = []
        for _ in range(50 * r):
            if len(out) == r:
                break
            c = self.rng.choice(self.item_ids)
            if c not in seen and c not in out:
                out.append(c)
        return out
