"""Training examples: sessionised histories, next-item positives, sampled negatives."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model.config import EmbSumConfig


@dataclass
class Example:
    """One user state: sessions (lists of item ids, oldest first) and the next engaged item."""

    user_id: str
    sessions: list[list[str]]
    positive: str


def sessionize(events: Sequence[dict[str, Any]], gap_s: float, max_items: int) -> list[list[str]]:
    """Split time-ordered engagements into sessions by time gap or size limit."""
    sessions: list[list[str]] = []
    last_ts = None
    for e in events:
        ts = float(e["ts"])
        if not sessions or len(sessions[-1]) >= max_items or (last_ts is not None and ts - last_ts > gap_s):
            sessions.append([])
        sessions[-1].append(str(e["item_id"]))
        last_ts = ts
    return sessions


def user_sessions(events: Sequence[dict[str, Any]], cfg: EmbSumConfig) -> list[list[str]]:
    """The last max_history engagements, sessionised, last max_sessions sessions kept."""
    recent = list(events)[-cfg.max_history:]
    return sessionize(recent, cfg.session_gap_s, cfg.session_max_items)[-cfg.max_sessions:]


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
    out = []
    for user, events in user_events.items():
        for t in range(min_history, len(events)):
            out.append(Example(user, user_sessions(events[:t], cfg), str(events[t]["item_id"])))
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
