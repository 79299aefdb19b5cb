"""Summaries off the recommendation path: a bounded lane of summary jobs, run beside the engine.

In lane mode a refresh no longer generates text inside the engagement's round: the round queues
a job (the user's session encodings as of that engagement) and ranks with the user's last global
embedding at once. The lane batches jobs across users and generates them in its own thread; a
result waits here until the user's next batch writes it into the state (engine._work), so the
state store has one writer. One job per user is kept (a newer one replaces it); past max_jobs
the oldest is dropped and counted, and that user keeps its older summary until the next refresh.

A session whose token states the engine's cache no longer holds travels as its encoder input text
and is encoded here, by the lane's model copy, not in the round; a job replaced before it runs is
never encoded. The states are not written back to the token cache: the engine thread owns it (it
is not thread-safe), and handing them back through the results would hold tens of kB per user
mostly for users who never return (the very load that makes the cache miss).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from model.grounding import Grounding
from model.inference import EmbSumInference, SessionEncoding
from streams.engine.config import LaneLimits


@dataclass
class SummaryJob:
    """One user's summary input as of one engagement."""

    user_id: str
    basis: int  # the state's total_events at that engagement
    ts: float  # its event time
    # a str: the encoder input of a session whose token states the engine's cache no longer held
    sessions: list[SessionEncoding | str]
    allowed: Grounding | None = None  # what a grounded summary may say (model/grounding.py; None: free)
    queued: float = field(default_factory=time.monotonic)


@dataclass
class SummaryResult:
    text: str
    embedding: np.ndarray  # (d,) float16, as stored in the state
    basis: int
    ts: float
    queued: float  # wall clock when the job was queued, and when it was done
    done: float


class SummaryLane:
    """Jobs in, results out; thread-safe between the engine and the lane's runner."""

    def __init__(self, model: EmbSumInference, limits: LaneLimits | None = None) -> None:
        limits = limits or LaneLimits()
        # its own tokenizer: the engine's tokenizes concurrently and a fast tokenizer's state
        # must not be shared across threads
        self.model = copy.copy(model)
        self.model.tokenizer = copy.deepcopy(model.tokenizer)
        self.max_jobs, self.batch, self.max_results = limits.max_jobs, limits.batch, limits.max_results
        # a job holds its sessions' token states (up to ~200 kB in float16): under overload the
        # queue is bounded by bytes too, or it would hold hundreds of MB
        self.max_bytes, self._bytes = limits.max_bytes, 0
        self._jobs: OrderedDict[str, SummaryJob] = OrderedDict()
        self._results: OrderedDict[str, SummaryResult] = OrderedDict()
        self._lock = threading.Lock()
        self.queued = self.dropped = self.done = self.applied = 0
        self.recomputed = 0  # sessions encoded here for their token states (the round no longer does)
        self.wait_s: list[float] = []  # queued -> done, recent jobs

    def submit(self, job: SummaryJob) -> None:
        """Queue a job; it replaces the user's queued one; the oldest goes when full."""
        with self._lock:
            self._bytes -= _size(self._jobs.pop(job.user_id, None))
            self._jobs[job.user_id] = job
            self._bytes += _size(job)
            self.queued += 1
            while len(self._jobs) > self.max_jobs or (self._bytes > self.max_bytes and len(self._jobs) > 1):
                self._bytes -= _size(self._jobs.popitem(last=False)[1])
                self.dropped += 1

    def pending(self) -> int:
        with self._lock:
            return len(self._jobs)

    def due(self, engine_busy: bool, yield_s: float) -> bool:
        """Jobs wait, and the engine has no batch in flight or the oldest job waited yield_s:
        beside a batch, the lane's decoding takes CPU and the GIL from recommendations."""
        with self._lock:
            first = next(iter(self._jobs.values()), None)
        return first is not None and (not engine_busy or time.monotonic() - first.queued >= yield_s)

    def run_once(self) -> int:
        """Generate up to `batch` queued summaries (call from the lane's thread); returns how many."""
        with self._lock:
            jobs = [self._jobs.popitem(last=False)[1] for _ in range(min(self.batch, len(self._jobs)))]
            self._bytes -= sum(_size(j) for j in jobs)
        if not jobs:
            return 0
        users = self._encoded(jobs)
        grounded = all(j.allowed is not None for j in jobs)  # one checkpoint: all or none
        out = self.model.summarize(users, [j.allowed for j in jobs] if grounded else None)
        now = time.monotonic()
        with self._lock:
            for j, s in zip(jobs, out, strict=True):
                old = self._results.get(j.user_id)
                if old is None or old.basis <= j.basis:
                    self._results[j.user_id] = SummaryResult(
                        s.text, np.asarray(s.embedding, np.float32).astype(np.float16), j.basis, j.ts, j.queued, now)
                self.wait_s = [*self.wait_s[-999:], now - j.queued]
            while len(self._results) > self.max_results:  # users who never came back
                self._results.popitem(last=False)
            self.done += len(jobs)
        return len(jobs)

    def _encoded(self, jobs: list[SummaryJob]) -> list[list[SessionEncoding]]:
        """The jobs' sessions in float32, those sent as text encoded first (rounded through float16
        as the round keeps them: the inline path's values, up to the padding of the batch a session
        is encoded in, as there); equal texts encoded once."""
        texts = list(dict.fromkeys(s for j in jobs for s in j.sessions if isinstance(s, str)))
        done = {t: _rounded(e) for t, e in zip(texts, self.model.encode_sessions(texts), strict=True)}
        with self._lock:
            self.recomputed += len(texts)
        return [[_float32(done[s] if isinstance(s, str) else s) for s in j.sessions] for j in jobs]

    def take(self, user_id: str) -> SummaryResult | None:
        """The user's finished summary, removed from the lane (None when there is none)."""
        with self._lock:
            res = self._results.pop(user_id, None)
        self.applied += res is not None
        return res

    def stats(self) -> dict:
        """Counters and the queued -> done wait (p50/p99 over recent jobs), for the stats file."""
        with self._lock:
            waits = np.asarray(self.wait_s)
            return {"lane_queued": self.queued, "lane_dropped": self.dropped, "lane_done": self.done,
                    "lane_applied": self.applied,
                    "lane_recomputed": self.recomputed, "lane_pending": len(self._jobs),
                    "lane_results_waiting": len(self._results),
                    "lane_wait_p50_s": float(np.percentile(waits, 50)) if len(waits) else None,
                    "lane_wait_p99_s": float(np.percentile(waits, 99)) if len(waits) else None}


def _size(job: SummaryJob | None) -> int:
    """Bytes a queued job holds (its sessions' arrays or texts, and its grounding's)."""
    if job is None:
        return 0
    allowed = 0 if job.allowed is None else job.allowed.nbytes
    return allowed + sum(len(s.encode()) if isinstance(s, str) else s.embedding.nbytes + s.token_states.nbytes
                         for s in job.sessions)


def _rounded(s: SessionEncoding) -> SessionEncoding:
    """A fresh encoding as the engine keeps it (float16)."""
    return SessionEncoding(s.embedding.astype(np.float16), s.token_states.astype(np.float16))


def _float32(s: SessionEncoding) -> SessionEncoding:
    """Jobs keep the engine's float16 values; the model reads float32."""
    return SessionEncoding(np.asarray(s.embedding, np.float32), np.asarray(s.token_states, np.float32))
