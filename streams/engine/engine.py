"""The per-event engine: engagements in, recommendations out. No Kafka, no Faust.

A batch is planned in arrival order (sessionize, counters, fallback, refresh decisions:
cheap bookkeeping), then the model work runs in rounds holding at most one event per
user, so every model call is batched across users and the result equals one-by-one runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model.inference import EmbSumInference
from store import BoundedCache, IdMemory, ItemStore, UserState, VectorIndex
from streams.engine.bulk_refresh import BulkRefresh
from streams.engine.catalogue import ItemCatalogue
from streams.engine.config import EngineConfig
from streams.engine.id_half import IdHalf
from streams.engine.parameters import (
    ParamOutcome,
    PreparedSlice,
    apply_parameters,
    prepare_parameters,
)
from streams.engine.popularity import RecentPopularity
from streams.engine.rounds import ModelRounds
from streams.engine.sessionizer import append_event, session_keys, sessions
from streams.engine.state_mapping import BytesStateMapping, StateMapping
from streams.engine.summary_lane import SummaryLane
from streams.engine.types import BatchOutcome, EngineStats, EventResult, Task, UserWork

logger = logging.getLogger(__name__)

__all__ = ["BatchOutcome", "Engine", "EngineConfig", "EventResult"]


class Engine(ItemCatalogue, BulkRefresh):
    """Keeps items, the vector index and user states up to date; recommends per engagement.
    The one door to the per-event logic: nothing outside streams/engine/ reaches past it."""

    def __init__(self, model: EmbSumInference, *, items: ItemStore, index: VectorIndex,
                 states: StateMapping, token_cache: BoundedCache,
                 config: EngineConfig | None = None, id_half: IdHalf | None = None) -> None:
        self.states = states
        config = config or EngineConfig.from_model(model.config)
        # the model, stores, index, config and counters have one owner, shared with bulk refresh
        lane = SummaryLane(model, config.lane) if config.summary_lane else None
        self._rounds = ModelRounds(model, items, index, token_cache, config, EngineStats(), id_half, lane)
        self._popularity = RecentPopularity(config.popular_window)
        self.last_batch = EngineStats()

    model = property(lambda self: self._rounds.model)
    items = property(lambda self: self._rounds.items)
    index = property(lambda self: self._rounds.index)
    config = property(lambda self: self._rounds.config)
    stats = property(lambda self: self._rounds.stats)
    lane = property(lambda self: self._rounds.lane, doc="The summary lane (None: summaries in the round).")

    @property
    def token_cache(self) -> BoundedCache:
        return self._rounds.token_cache

    @token_cache.setter
    def token_cache(self, cache: BoundedCache) -> None:
        self._rounds.token_cache = cache

    @property
    def id_half(self) -> IdHalf | None:
        """A hybrid checkpoint's ID term (None: content only)."""
        return self._rounds.id_half

    @id_half.setter
    def id_half(self, half: IdHalf | None) -> None:
        self._rounds.id_half = half

    @property
    def id_memory(self) -> IdMemory | None:
        """The ID half's rows (None: content only): what a worker saves beside its offsets."""
        half = self._rounds.id_half
        return None if half is None else half.memory

    @classmethod
    def in_memory(cls, model: EmbSumInference, config: EngineConfig | None = None,
                  index: VectorIndex | None = None, id_half: IdHalf | None = None) -> Engine:
        """Memory-backed stores and an exact FAISS index (tests, offline parity, benchmarks)."""
        if index is None:
            from store.config import IndexConfig
            from store.faiss_index import FaissIndex

            index = FaissIndex(IndexConfig(dim=model.dim))
        return cls(model, items=ItemStore.open(None), index=index, states=BytesStateMapping({}),
                   token_cache=BoundedCache.in_memory(), config=config, id_half=id_half)

    # ---- fallback, parameters, status -------------------------------------------------

    def observe(self, item_id: str) -> None:
        """Count an engagement in the popularity fallback (replays that bypass process_batch)."""
        self._popularity.observe(item_id)

    def popular(self, k: int, seen: set[str]) -> list[tuple[str, float]]:
        """The fallback's top k items, excluding `seen`."""
        return self._popularity.top(k, seen)

    def prepare_parameters(self, records: list[tuple[bytes, bytes | None]],
                           ceiling: int) -> PreparedSlice | None:
        """apply_parameters' work for records done ahead (engine/parameters.py: off the lock,
        never beside another apply); None for a content-only checkpoint."""
        return None if self.id_half is None else prepare_parameters(self.id_half, records, ceiling)

    def apply_parameters(self, records: list[tuple[bytes, bytes | None]], ceiling: int,
                         prepared: PreparedSlice | None = None) -> list[ParamOutcome]:
        """Records of the `parameters` topic into the ID half (engine/parameters.py), with
        prepare_parameters' result when done ahead; [] for a content-only checkpoint."""
        return [] if self.id_half is None else apply_parameters(self.id_half, records, ceiling, prepared)

    def count_expired(self, users: int) -> None:
        """Count users whose state an expiry sweep dropped outside process_batch."""
        self.stats.expired += users

    def lane_due(self, busy: bool, overdue_s: float) -> bool:
        """True when the summary lane should run a batch now (busy: an engagement batch holds
        the engine); False without a lane."""
        return self.lane is not None and self.lane.due(busy, overdue_s)

    def run_lane(self) -> int:
        """Generate one batch of queued summaries (on the caller's thread); the summaries done."""
        return self.lane.run_once() if self.lane is not None else 0

    def user_state(self, user_id: str) -> UserState | None:
        """The stored state of a user (None: unknown or expired)."""
        return self.states.get(user_id)

    def status(self) -> dict[str, Any]:
        """What a worker reports about the engine: the summary lane and the ID rows."""
        half = self.id_half
        return {**(self.lane.stats() if self.lane is not None else {}),
                "id_version": None if half is None else half.memory.version,
                "id_rows": None if half is None else len(half.memory)}

    # ---- engagements --------------------------------------------------------------------

    def process_engagements(self, events: Sequence[Mapping[str, Any]],
                            sources: Sequence[Mapping[str, Any] | None] | None = None
                            ) -> list[EventResult]:
        """One EventResult per event, in order, with states read from and written to
        `self.states` (offline use: tests, replay, benchmarks)."""
        users = {str(ev["user_id"]) for ev in events}
        with self.stats.timed("store"):
            states = {u: self.states.get(u) for u in users}
        batch = self.process_batch(events, sources, states)
        with self.stats.timed("store"):
            for st in batch.changed.values():
                self.states.put(st)
        return batch.results

    def process_batch(self, events: Sequence[Mapping[str, Any]],
                      sources: Sequence[Mapping[str, Any] | None] | None,
                      states: Mapping[str, UserState | None]) -> BatchOutcome:
        """Results for `events` given the stored state of each of their users (None: new);
        the changed states come back in the outcome, nothing is stored here."""
        before = EngineStats(**self.stats.as_dict())
        sources = list(sources) if sources is not None else [None] * len(events)
        results = [EventResult(i) for i in range(len(events))]
        works: dict[str, UserWork] = {}
        queued: dict[str, list[Task]] = {}
        for i, (ev, src) in enumerate(zip(events, sources, strict=True)):
            task = self._plan(ev, dict(src) if src else None, results[i], works, states)
            if task is not None:
                queued.setdefault(task.user_id, []).append(task)
        for batch in _rounds(queued, inline=self.lane is None):
            self._run_round(batch, results)
        changed = self._finalize(works)
        self._count(results, len(events))
        self.last_batch = _diff(self.stats, before)
        return BatchOutcome(results, changed)

    def process_one(self, event: Mapping[str, Any],
                    source: Mapping[str, Any] | None = None) -> EventResult:
        return self.process_engagements([event], [source])[0]

    def _plan(self, ev: Mapping[str, Any], src: dict | None, res: EventResult,
              works: dict[str, UserWork], stored: Mapping[str, UserState | None]) -> Task | None:
        """Bookkeeping for one event in arrival order; model work is queued as a Task."""
        if ev["kind"] == "impression":
            res.skipped = "impression"  # shown, not engaged: never enters history
            return None
        user_id, item_id, ts = str(ev["user_id"]), str(ev["item_id"]), float(ev["ts"])
        with self.stats.timed("store"):
            known = item_id in self.items
        if not known:
            res.error = f"unknown item: {item_id!r} is not in the catalogue"
            return None
        work = self._work(works, user_id, ts, stored)
        state, cfg = work.state, self.config
        if _already_applied(state, src):
            res.skipped = "duplicate"  # its recommendation went out before the state was written
            return None
        prev_ts = float(state.last_seen)
        opened = self._apply_engagement(state, item_id, ts, ev["kind"], src)
        work.dirty = True
        if state.total_events < cfg.min_engagements:
            res.recommendation = self._fallback(state, src)
            return None
        refresh = cfg.refresh.due(has_summary=work.has_summary, since=state.events_since_summary,
                                  opened_session=opened, prev_ts=prev_ts, ts=ts)
        if refresh:
            state.events_since_summary = 0
            work.has_summary = True
        return Task(res.index, user_id, self._keys(state), sessions(state),
                    state.seen_items(), refresh, src, work, state.total_events, ts)

    def _keys(self, state: UserState) -> list[int]:
        """The state's session keys from its items' current text (docs/architecture.md, items)."""
        with self.stats.timed("store"):
            return session_keys(state, self.items)

    def _apply_engagement(self, state: UserState, item_id: str, ts: float, kind: str,
                          src: Mapping[str, Any] | None = None, observe: bool = True) -> bool:
        """The bookkeeping of one engagement (live path and bulk refresh alike): history,
        counters, applied offset, the fallback's counts. True when it opened a session."""
        opened = append_event(state, item_id, ts, kind, self.config.session_rule, self.config.max_seen)
        state.total_events += 1
        state.events_since_summary += 1
        state.last_seen = max(float(state.last_seen), ts)
        if src is not None and src.get("offset") is not None:
            state.applied[int(src["partition"])] = int(src["offset"])
        if observe:
            self._popularity.observe(item_id)
        return opened

    def _work(self, works: dict[str, UserWork], user_id: str, ts: float,
              stored: Mapping[str, UserState | None]) -> UserWork:
        """The user's working state; loaded once per batch, reset when expired (event-time TTL)."""
        work = works.get(user_id)
        if work is None:
            work = _load(stored.get(user_id), user_id)
            works[user_id] = work
            self._take_summary(work)
        if work.state.item_ids and ts - work.state.last_seen > self.config.ttl_s:
            self.stats.expired += 1
            # queued tasks keep the old working state; later events start from nothing
            applied = work.state.applied
            works[user_id] = work = _load(None, user_id)
            work.state.applied = dict(applied)  # expiry forgets history, not what was applied
            work.dirty = True
        return work

    def _take_summary(self, work: UserWork) -> None:
        """Lane mode: write the user's finished summary into its state (if it is newer)."""
        lane, st = self.lane, work.state
        res = lane.take(st.user_id) if lane is not None else None
        if res is None or not st.summary_events <= res.basis <= st.total_events:
            return  # none, older than the one held, or made before the state was reset
        st.summary, st.global_embedding = res.text, res.embedding
        st.summary_events, st.summary_ts = res.basis, res.ts
        work.has_summary = work.dirty = True

    def _fallback(self, state: UserState, src: dict | None) -> dict[str, Any]:
        self.stats.fallbacks += 1
        top = self._popularity.top(self.config.top_k, state.seen_items())
        return self._message(state.user_id, top, state.summary or None, src)

    def _message(self, user_id: str, hits: list[tuple[str, float]], summary: str | None,
                 src: dict | None, age: dict[str, float] | None = None) -> dict[str, Any]:
        """A `recommendations` record per the contract in docs/architecture.md; age: how far the
        summary lags this engagement (events, event-time seconds)."""
        return {"user_id": user_id, "items": [{"item_id": i, "score": s} for i, s in hits],
                "summary": summary, "summary_age": age, "model_version": self.config.model_version,
                "param_version": self.param_version, "source": src, "produced_ts": time.time()}

    @property
    def param_version(self) -> int | None:
        """The ID rows' sync version (0: the checkpoint's rows only); None without an ID half."""
        half = self.id_half
        return None if half is None else half.memory.version

    def _run_round(self, tasks: list[Task], results: list[EventResult]) -> None:
        """Model work for the tasks of one round (any users, any events of a user), batched."""
        ws = [t.work for t in tasks]
        fresh = self._rounds.encode_changed(tasks, ws)
        self._rounds.refresh_summaries(tasks, ws, fresh)
        codes = self._rounds.user_codes(tasks, ws)
        for t, w, hits in zip(tasks, ws, self._rounds.rank(tasks, codes), strict=True):
            age = {"events": t.total - w.state.summary_events, "seconds": t.ts - w.state.summary_ts}
            results[t.index].recommendation = self._message(t.user_id, hits, w.state.summary or None, t.source,
                                                            age if w.state.summary else None)

    def _finalize(self, works: dict[str, UserWork]) -> dict[str, UserState]:
        """Each changed user's final state, with embeddings of its current sessions only."""
        changed = {}
        for user_id, work in works.items():
            if not work.dirty:
                continue
            st = work.state
            # current keys: the embedding of a session re-keyed by an item edit is dropped
            keys = [k for k in self._keys(st) if k in work.embeddings]
            st.session_keys = np.array(keys, np.uint64)
            st.session_embeddings = (np.stack([work.embeddings[k] for k in keys]) if keys
                                     else np.zeros((0, self.model.dim), np.float16))
            st.version += 1
            changed[user_id] = st
        return changed

    def _count(self, results: list[EventResult], n: int) -> None:
        self.stats.batches += 1
        self.stats.events += n
        self.stats.recommendations += sum(r.recommendation is not None for r in results)
        self.stats.errors += sum(r.error is not None for r in results)
        self.stats.skipped += sum(r.skipped is not None for r in results)


def _already_applied(state: UserState, src: dict | None) -> bool:
    """The state records this engagement's source offset (or a later one) as applied."""
    if src is None or src.get("offset") is None:
        return False
    return state.applied.get(int(src["partition"]), -1) >= int(src["offset"])


def _load(state: UserState | None, user_id: str) -> UserWork:
    if state is None:
        return UserWork(UserState(user_id=user_id), {}, has_summary=False)
    embs = dict(zip(state.session_keys.tolist(), state.session_embeddings, strict=True))
    return UserWork(state, embs, has_summary=len(state.global_embedding) > 0)


def _rounds(queued: dict[str, list[Task]], inline: bool) -> list[list[Task]]:
    """Tasks in as few model rounds as the summaries allow. A round encodes, ranks and scores all
    its tasks in one batch (a user's consecutive engagements share one; their sessions are known
    in advance). Inline, a round's summaries change the global embedding that every task of the
    round ranks with, so a refreshing task sits in a round of its own for its user."""
    rounds: list[list[Task]] = []
    for tasks in queued.values():
        level = 0
        for t in tasks:
            if inline and t.refresh and level < len(rounds) and _has_user(rounds[level], t.user_id):
                level += 1
            if level == len(rounds):
                rounds.append([])
            rounds[level].append(t)
            level += int(inline and t.refresh)
    return [sorted(r, key=lambda t: t.index) for r in rounds]


def _has_user(tasks: list[Task], user_id: str) -> bool:
    return any(t.user_id == user_id for t in tasks)


def _diff(now: EngineStats, before: EngineStats) -> EngineStats:
    a, b = now.as_dict(), before.as_dict()
    return EngineStats(**{k: a[k] - b[k] for k in a})
