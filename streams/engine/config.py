"""Options of the per-event engine: sessions, summary refresh policy, retrieval, fallback, expiry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from model.config import EmbSumConfig
from model.sessions import SessionRule
from store import FetchBound

RefreshMode = Literal["every_event", "every_n", "session_close", "never", "period"]
REFRESH_MODES: tuple[str, ...] = ("every_event", "every_n", "session_close", "never", "period")


@dataclass(frozen=True)
class LaneLimits:
    """Bounds of the summary lane (worker flags --lane-*)."""

    max_jobs: int = 1024  # queued summary jobs (one per user) before the oldest is dropped
    # bytes of queued jobs (their float16 session states): overload must not grow the worker
    max_bytes: int = 64 * 1024 * 1024
    batch: int = 16  # jobs generated together (across users)
    max_results: int = 100_000  # finished summaries waiting for their user's next batch

    def __post_init__(self) -> None:
        if min(self.max_jobs, self.max_bytes, self.batch, self.max_results) < 1:
            raise ValueError("summary lane bounds must be >= 1")


@dataclass(frozen=True)
class RefreshPolicy:
    """When to regenerate a user's summary (global embedding); UPE is recomputed every event.

    every_event: always; every_n: after `every_n` events since the last refresh;
    session_close: when an event opens a new session (the previous one closed);
    never: frozen after the first summary; period: on the first event of each new
    event-time period of `period_s` seconds (e.g. 86400: a daily, stale summary).
    A user without a summary always gets one.
    """

    mode: RefreshMode = "every_event"
    every_n: int = 5
    period_s: float = 86_400.0

    def __post_init__(self) -> None:
        if self.mode not in REFRESH_MODES:
            raise ValueError(f"refresh mode {self.mode!r} not in {REFRESH_MODES}")
        if self.every_n < 1 or self.period_s <= 0:
            raise ValueError("every_n must be >= 1 and period_s > 0")

    @classmethod
    def parse(cls, text: str) -> RefreshPolicy:
        """'every_event', 'never', 'session_close', 'every_n:5', 'period:86400'."""
        mode, _, arg = text.partition(":")
        if mode == "every_n":
            return cls("every_n", every_n=int(arg or 5))
        if mode == "period":
            return cls("period", period_s=float(arg or 86_400.0))
        return cls(mode)  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        """The policy as `parse` reads it (a flag's value)."""
        arg = {"every_n": self.every_n, "period": self.period_s}.get(self.mode)
        return self.mode if arg is None else f"{self.mode}:{arg:g}"

    def due(self, *, has_summary: bool, since: int, opened_session: bool,
            prev_ts: float, ts: float) -> bool:
        """True when this event must refresh the summary (since: events since the last one)."""
        if not has_summary or self.mode == "every_event":
            return True
        if self.mode == "every_n":
            return since >= self.every_n
        if self.mode == "session_close":
            return opened_session
        if self.mode == "period":
            return int(ts // self.period_s) != int(prev_ts // self.period_s)
        return False


@dataclass(frozen=True)
class IdIndexConfig:
    """How the hybrid's ID half finds candidates and its prior's reference at any row count
    (streams/engine/id_half.py)."""

    # an inner-product index over the gated rows g_i e_i: exact below this many rows, IVF above
    exact_threshold: int = 50_000
    nprobe: int = 32  # IVF lists probed per query
    # r_u is a quantile over a uniform sample of this many rows (exact at or below it); rank
    # error ~ sqrt(q (1 - q) / n): 0.0047 at q = 0.9 (store/row_sample.py)
    reference_sample: int = 4096
    seed: int = 0  # of the sample (the same rows give the same sample on every worker)


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine decides with; session defaults follow the model's config."""

    top_k: int = 10  # recommendations per message
    candidates: int = 50  # retrieved from the index per user before the exact rerank
    # UPE codes that query the index per engagement (model/query_codes.py; 0: all m); the union
    # is reranked with the exact score. 10 of 32: the all-codes top-10 on clustered data with
    # 9 sources (8 sessions + global; 8 codes: 97% of users), and 98.8% of ML-100K replay events
    # (bench/bench_bounded_retrieval.py)
    query_codes: int = 10
    # neighbours one query fetches: bounded, whatever the user's seen list (store/config.py)
    fetch: FetchBound = dataclasses.field(default_factory=FetchBound)
    session_gap_s: float = 3600.0  # a gap longer than this opens a new session
    session_max_items: int = 10  # a session holding this many items is closed
    max_sessions: int = 8  # g: most recent sessions kept (and encoded) per user
    max_history: int = 60  # most recent engagements kept per user (the open session stays whole)
    # distinct items remembered beyond the kept history, never recommended again (0: none)
    max_seen: int = 1000
    # session encodings remembered by their encoder input (token ids after truncation): a session
    # that grew past the model's token limit is not encoded again (~1 kB each)
    encodings_kept: int = 65_536
    refresh: RefreshPolicy = dataclasses.field(default_factory=RefreshPolicy)
    # generate refreshed summaries off the recommendation path (streams/engine/summary_lane.py);
    # False: inside the engagement's round (results independent of timing: parity, recomputes)
    summary_lane: bool = False
    lane: LaneLimits = dataclasses.field(default_factory=LaneLimits)  # the lane's bounds
    min_engagements: int = 1  # below this many: popularity fallback (Monolith frequency filter)
    ttl_s: float = 30 * 86_400.0  # event-time inactivity after which a user's state is dropped
    popular_window: int = 1000  # recent engagements counted for the fallback
    model_version: str = "embsum"

    def __post_init__(self) -> None:
        low = {"top_k": 1, "candidates": 1, "query_codes": 0, "min_engagements": 1, "max_seen": 0}
        bad = [f"{k} >= {v}" for k, v in low.items() if getattr(self, k) < v] + \
            (["ttl_s > 0"] if self.ttl_s <= 0 else [])
        if bad:
            raise ValueError(f"engine options need {', '.join(bad)}")

    @property
    def session_rule(self) -> SessionRule:
        """The session rule shared with training (model/sessions.py)."""
        return SessionRule(self.session_gap_s, self.session_max_items, self.max_sessions,
                           self.max_history)

    @classmethod
    def from_model(cls, cfg: EmbSumConfig, **overrides: Any) -> EngineConfig:
        """Session rules taken from the model's config (as in training), then overrides."""
        return cls().on_model(cfg, **overrides)

    def on_model(self, cfg: EmbSumConfig, **overrides: Any) -> EngineConfig:
        """These options with the model's session rules (as in training), then overrides."""
        base = dict(session_gap_s=cfg.session_gap_s, session_max_items=cfg.session_max_items,
                    max_sessions=cfg.max_sessions, max_history=cfg.max_history)
        return dataclasses.replace(self, **{**base, **overrides})
