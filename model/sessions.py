"""Sessions of a user's history: the one rule for training, evaluation and serving.

Boundaries are causal: an engagement opens a new session when the user has none, when it
comes more than gap_s after the previous one, or when the open session holds max_items.
Then only the last max_sessions sessions are kept, and the oldest items beyond max_history
are dropped from the front (never from the open session, which a later engagement may
extend). Appending one engagement at a time therefore gives exactly what sessionizing the
whole history gives; streams/engine/sessionizer.py applies the same functions to a UserState.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SessionRule:
    """Where sessions split and how much history is kept."""

    gap_s: float  # a gap longer than this opens a new session
    max_items: int  # a session holding this many items is closed
    max_sessions: int  # g: most recent sessions kept
    max_history: int  # most recent items kept (the open session is never cut)

    @classmethod
    def of(cls, cfg) -> SessionRule:
        """The rule of an EmbSumConfig (or anything with the same four fields)."""
        return cls(cfg.session_gap_s, cfg.session_max_items, cfg.max_sessions, cfg.max_history)


def opens_session(starts: Sequence[int], n: int, last_ts: float | None, ts: float,
                  rule: SessionRule) -> bool:
    """Would an engagement at `ts` open a new session after `n` items split at `starts`?"""
    if not starts or n == 0 or last_ts is None:
        return True
    return ts - last_ts > rule.gap_s or n - starts[-1] >= rule.max_items


def trim(starts: Sequence[int], n: int, rule: SessionRule) -> tuple[int, list[int]]:
    """(items to drop from the front, session starts after dropping them) for n items."""
    kept = list(starts)[-rule.max_sessions:]
    if not kept:
        return n, []
    cap = max(rule.max_history, n - kept[-1])  # the open session stays whole
    cut = max(kept[0], n - cap)
    ends = kept[1:] + [n]
    return cut, [max(s, cut) - cut for s, e in zip(kept, ends, strict=True) if e > cut]


@dataclass
class SessionHistory:
    """A user's kept history in the rule's shape: items, their times, session starts."""

    rule: SessionRule
    items: list[str]
    times: list[float]
    starts: list[int]

    @classmethod
    def empty(cls, rule: SessionRule) -> SessionHistory:
        return cls(rule, [], [], [])

    def append(self, item_id: str, ts: float) -> bool:
        """Add one engagement and trim; True when it opened a new session."""
        last = self.times[-1] if self.times else None
        opened = opens_session(self.starts, len(self.items), last, ts, self.rule)
        if opened:
            self.starts.append(len(self.items))
        self.items.append(item_id)
        self.times.append(ts)
        cut, self.starts = trim(self.starts, len(self.items), self.rule)
        if cut:
            del self.items[:cut], self.times[:cut]
        return opened

    def sessions(self) -> list[list[str]]:
        """Item ids of each kept session, oldest first."""
        if not self.starts:
            return []
        ends = self.starts[1:] + [len(self.items)]
        return [self.items[s:e] for s, e in zip(self.starts, ends, strict=True)]


def sessionize(events: Iterable[tuple[str, float]], rule: SessionRule) -> list[list[str]]:
    """The kept sessions of a time-ordered history of (item_id, ts)."""
    hist = SessionHistory.empty(rule)
    for item_id, ts in events:
        hist.append(item_id, ts)
    return hist.sessions()
