"""The expiry sweep: users inactive for ttl_s of event time are dropped from the user-state
table on a timer (a tombstone in the changelog), not only when their next event arrives.

Event time is the partition's watermark (worker/event_time.py), so a replay of old data
expires users as the replay moves, and a stream that stops expires nobody. A partition with
no watermark yet (just after a restart) is skipped until its first event.

A pass walks the table in slices of a few hundred keys, one slice per tick, from a cursor. A
thread reads the slice (RocksDB reads are thread-safe) and peeks each state's header (last_seen,
applied offsets), never the whole state decoded; the event loop only deletes what it found
stale, DELETES_PER_HOLD at a time. Reading a slice on the loop held it for 185 ms at 250k users.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

from store import StateCodecError, UserState, peek_user_state
from store.user_state import latest_partition
from streams.kafka.gap_fetcher import FetchedEvent, FetchedMessage
from streams.worker.batch import acting_as
from streams.worker.runtime import Runtime
from streams.worker.table_scan import Cursor, Entry, TableScan, scan_of
from streams.worker.topics import Tables

logger = logging.getLogger(__name__)

DELETES_PER_HOLD = 32  # deletes between two yields of the event loop (each writes a tombstone)


def home_partition(state: UserState) -> int | None:
    """The engagements partition of the user's latest applied event (its table partition)."""
    return latest_partition(state.applied)


def stale_entries(entries: Sequence[Entry], ttl_s: float,
                  watermarks: Mapping[int, float]) -> list[tuple[Entry, int]]:
    """(entry, home partition) of every entry whose last_seen is more than ttl_s behind its
    partition's watermark; states that do not read are left to the engagement path."""
    out = []
    for entry in entries:
        try:
            head = peek_user_state(entry.value)
        except StateCodecError as e:  # the engagement path reports it when the user comes back
            logger.warning("expiry sweep skips %r: %s", entry.key[:64], e)
            continue
        part = head.home_partition
        if part is not None and part in watermarks and watermarks[part] - head.last_seen > ttl_s:
            out.append((entry, part))
    return out


class ExpirySweep:
    """A pass over the user-state table every `every_s`, `slice_keys` keys per `tick`."""

    def __init__(self, runtime: Runtime, tables: Tables, engagements_topic: str,
                 scan: TableScan | None = None) -> None:
        settings = runtime.settings
        self.runtime, self.tables, self.topic = runtime, tables, engagements_topic
        self.scan = scan if scan is not None else scan_of(tables.states)
        self.every_s, self.slice_keys = settings.sweep_every_s, settings.sweep_slice_keys
        self.cursor: Cursor | None = None  # the last key read by the pass under way
        self.in_pass = False
        self.share, self.least_pause_s = settings.sweep_share, settings.sweep_slice_every_s
        self.read_s = 0.0  # how long the last slice's read took on its thread
        self.pass_started = time.monotonic()  # the first pass starts every_s after start-up
        self.pass_expired = 0

    async def tick(self, now: float | None = None) -> int:
        """One slice when a pass is under way or due; the users it expired."""
        now = time.monotonic() if now is None else now
        if not self.in_pass:
            if now - self.pass_started < self.every_s:
                return 0
            self.in_pass, self.pass_started, self.cursor, self.pass_expired = True, now, None, 0
        return await self.step()

    async def step(self) -> int:
        """Read and peek the next slice on a thread, delete what is stale here; the longest
        time on the event loop (a run of deletes) is kept (stats file)."""
        ttl = self.runtime.engine.config.ttl_s
        marks = dict(self.runtime.clock.watermarks)
        entries, stale = await asyncio.to_thread(self._read_stale, self.cursor, ttl, marks)
        expired = 0
        if entries:
            self.cursor = (entries[-1].partition, entries[-1].key)
        for start in range(0, len(stale), DELETES_PER_HOLD):
            t0 = time.perf_counter()
            expired += self._delete(stale[start:start + DELETES_PER_HOLD])
            held = time.perf_counter() - t0
            self.runtime.sweep_block_max_s = max(self.runtime.sweep_block_max_s, held)
            await asyncio.sleep(0)
        self.runtime.engine.count_expired(expired)
        self.pass_expired += expired
        if len(entries) < self.slice_keys:
            self.end_pass()
        return expired

    def _read_stale(self, cursor: Cursor | None, ttl: float,
                    marks: Mapping[int, float]) -> tuple[list[Entry], list[tuple[Entry, int]]]:
        t0 = time.perf_counter()
        entries = self.scan.read(cursor, self.slice_keys)
        stale = stale_entries(entries, ttl, marks)
        self.read_s = time.perf_counter() - t0
        return entries, stale

    def pause_s(self) -> float:
        """The wait before the next slice: sweep_slice_every_s, or long enough that the last
        slice's read was `sweep_share` of the time since it began."""
        return max(self.least_pause_s, self.read_s * (1.0 - self.share) / self.share)

    def _delete(self, stale: list[tuple[Entry, int]]) -> int:
        expired = 0
        for entry, part in stale:
            # changed while the slice was peeked (an engagement came): the user is not idle
            if self.scan.get(entry.partition, entry.key) != entry.value:
                continue
            # the delete goes to the user's own changelog partition, as its writes did
            with acting_as(FetchedEvent(FetchedMessage(self.topic, part, -1, entry.key, None, 0.0))):
                del self.tables.states[entry.key]
            expired += 1
        return expired

    def end_pass(self) -> None:
        """Close the pass under way (the next starts every_s after this one started)."""
        if self.pass_expired:
            logger.info("expired %d inactive users (ttl %.0fs of event time)",
                        self.pass_expired, self.runtime.engine.config.ttl_s)
        self.in_pass, self.cursor, self.read_s = False, None, 0.0

    async def run_pass(self) -> int:
        """A whole pass now, slice after slice (tests, benches); the users it expired."""
        self.in_pass, self.cursor, self.pass_expired = True, None, 0
        while self.in_pass:
            await self.step()
        return self.pass_expired


def register_expiry_sweep(app, runtime: Runtime, tables: Tables, engagements_topic: str) -> None:
    """A task that ticks the sweep every sweep_slice_every_s (a faust timer would warn of
    overlap whenever a slice outlasts its short interval)."""
    sweep = ExpirySweep(runtime, tables, engagements_topic)

    @app.task
    async def expire_inactive() -> None:
        while True:
            try:
                await sweep.tick()
            except Exception:  # the sweep's own failure: the worker and the next pass go on
                logger.warning("expiry sweep failed; retrying at the next pass", exc_info=True)
                sweep.end_pass()
            await asyncio.sleep(sweep.pause_s())
