"""Plain data the engine passes around: per-event results, batch work items and counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from store import SeenItems, UserState


@dataclass
class EventResult:
    """What one input engagement produced: a recommendation, an error, or a skip reason."""

    index: int
    recommendation: dict[str, Any] | None = None
    error: str | None = None  # reason for the dead-letter topic
    skipped: str | None = None  # e.g. "impression": valid, but nothing to recommend


@dataclass
class BatchOutcome:
    """What one engine batch gives back: a result per event and every state it changed."""

    results: list[EventResult]
    changed: dict[str, UserState]


@dataclass
class Task:
    """One personalised event awaiting model work, with the user's sessions as of that event."""

    index: int
    user_id: str
    keys: list[int]
    sessions: list[list[str]]
    seen: SeenItems | set[str]  # excluded from this event's recommendations (`in`, `len`)
    refresh: bool
    source: dict[str, Any] | None
    work: UserWork | None = None  # the user's working state this task reads and updates
    total: int = 0  # the user's total_events at this event (what a summary made here reflects)
    ts: float = 0.0  # this event's time


@dataclass
class UserWork:
    """A user's state while a batch runs; embeddings: session content key -> (d,) float16."""

    state: UserState
    embeddings: dict[int, np.ndarray]
    has_summary: bool
    dirty: bool = False


@dataclass
class EngineStats:
    """Counters since start; *_s are seconds spent in model, store and index calls."""

    batches: int = 0
    events: int = 0
    recommendations: int = 0
    fallbacks: int = 0
    errors: int = 0
    skipped: int = 0
    expired: int = 0
    sessions_encoded: int = 0
    sessions_recomputed: int = 0  # token-state cache misses recomputed for a summary
    sessions_reused: int = 0  # changed sessions whose encoder input was encoded before (not re-encoded)
    summaries: int = 0
    items_upserted: int = 0  # item records stored (encoded here or read from item-vectors)
    items_encoded: int = 0  # items this engine ran through the item encoder
    vectors_reencoded: int = 0  # item vectors made by another encoder, re-encoded here
    items_removed: int = 0
    model_s: float = 0.0
    store_s: float = 0.0
    index_s: float = 0.0
    retrieval_s: float = 0.0  # the index searches of ranking alone (index_s also holds item upserts)

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Add the block's wall time to `{what}_s`."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, f"{what}_s", getattr(self, f"{what}_s") + time.perf_counter() - t0)

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)
