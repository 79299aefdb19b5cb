"""What a worker holds besides faust: the model, the engine over local stores, the replicas.

The engine is plain blocking Python: it runs in a thread (so the event loop keeps heart-
beating) and one lock serialises it between the replicas (items, parameters) and the
engagement agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from model.inference import EmbSumInference
from store import (
    BoundedCache,
    CacheConfig,
    ItemStore,
    ItemVector,
    StateCodecError,
    UserState,
    decode_user_state,
    encode_user_state,
    rebuild_from_store,
)
from store.config import IndexConfig
from store.errors import VectorIndexError
from streams.engine.engine import Engine
from streams.engine.pacer import ApplyPacer
from streams.engine.state_mapping import BytesStateMapping
from streams.engine.types import EventResult
from streams.errors import ThreadrecError
from streams.kafka.gap_fetcher import FetchedEvent, GapFetcher
from streams.kafka.group_progress import GroupProgress
from streams.kafka.messages import (
    InvalidMessage,
    read_item_vector,
    reason_of,
    tombstone_id,
)
from streams.kafka.replica import TopicReplica
from streams.worker.config import WorkerSettings
from streams.worker.event_time import EventClock
from streams.worker.heap import freeze_startup_objects, release_free_heap
from streams.worker.id_rows import LocalIdRows, checkpoint_tag
from streams.worker.isolation import PoisonBreaker
from streams.worker.metrics import WorkerMetrics
from streams.worker.parameters import ParamStats, head_version

logger = logging.getLogger(__name__)

FATAL_EXIT_CODE = 3  # the engagements agent failed (see Runtime.fail)


class ReplicaLagError(ThreadrecError):
    """A replica (items or parameters) did not catch up within replica_wait_s."""


def load_model(settings: WorkerSettings) -> tuple[EmbSumInference, str]:
    """The checkpoint's model, or pretrained heads with a warning; and a model_version string."""
    if settings.checkpoint is not None:
        model = EmbSumInference.from_checkpoint(settings.checkpoint, settings.device, settings.inference)
        version = str(model.metadata.get("version") or settings.checkpoint.name)
        return model, version
    logger.warning("no --checkpoint: EmbSum heads are untrained; recommendations are not meaningful")
    return EmbSumInference.pretrained(device=settings.device, mode=settings.inference), "pretrained-untrained"


@dataclass
class Runtime:
    """The engine, its lock, the replicas and the engagements gap fetcher of one worker."""

    settings: WorkerSettings
    engine: Engine
    replicator: TopicReplica | None = None  # the items replica
    # the parameters replica: hybrid checkpoints only (a content-only one has no rows to update)
    param_replica: TopicReplica | None = None
    id_rows: LocalIdRows | None = None  # the ID rows on local disk (None: in memory, from the checkpoint)
    fetcher: GapFetcher | None = None  # None (unit tests without a broker): gaps are not repaired
    # the group's progress on `items` (None without a broker: only the vectors replica is awaited)
    items_progress: GroupProgress | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # every engine call runs on this one thread: the calls are serialised by `lock` anyway, and
    # one thread keeps their large transient allocations in one malloc arena (spread over the
    # default pool's threads, each arena kept its own peak and the RSS grew under overload)
    engine_thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="engine"))
    # parameters slices are decoded and planned here, beside serving and off the lock (their
    # reads only: the one replica task applies the slices in order, so none runs beside a
    # change); item-vectors slices are read and their records written ahead of their index
    prepare_thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="replica-prepare"))
    bad_items: int = 0  # items records this worker's items encoder dead-lettered
    bad_vectors: int = 0  # item-vectors records the replica dead-lettered
    serving: bool = False  # the first batch has started (start-up objects are frozen)
    agent_s: float = 0.0  # wall time inside the engagements agent's batches (stats file)
    gaps_repaired: int = 0  # skipped engagement ranges re-read from the broker
    records_reread: int = 0  # records those re-reads returned
    duplicates_skipped: int = 0  # redelivered engagements dropped (their users' states hold them)
    # redelivered engagements handled again: recorded as handled, missing from the user's state
    redeliveries_reapplied: int = 0
    tails_repaired: int = 0  # partition ends re-read after faust delivered nothing (tails.py)
    delivered_at: dict[int, float] = field(default_factory=dict)  # partition -> last event seen (monotonic)
    # one engagements batch at a time: the agent's, or a tail re-read's (streams/worker/tails.py)
    batch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    replica_wait_s: float | None = None  # how long serving waited for the replicas
    unknown_tombstones: int = 0  # item tombstones for items this replica never had
    # how a bad item or parameters record is dead-lettered (set where the faust topics exist)
    dead_letter: Callable[[object, str], Awaitable[None]] | None = None
    replica_stalls: int = 0  # item_wait_s waits that ended with the replica still behind
    send_counts: Counter = field(default_factory=Counter)  # streams/worker/outbox.py counters
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    params: ParamStats = field(default_factory=ParamStats)  # parameters records and sync lag
    handled: dict[int, int] = field(default_factory=dict)  # partition -> next offset to handle
    clock: EventClock | None = None  # event-time checks (built from settings when None)
    breaker: PoisonBreaker = field(default_factory=PoisonBreaker)  # unexpected per-record failures
    param_head: int = 0  # the trainer's version when the parameters replica started
    replica_letters_known: int = 0  # bad replica records already dead-lettered (not sent again)
    sweep_block_max_s: float = 0.0  # longest stretch one expiry sweep slice held the event loop
    exit: Callable[[int], None] = os._exit  # how fail() ends the process (tests replace it)
    param_pacer: ApplyPacer = field(init=False)  # records per slice of a sync (from the settings)
    item_pacer: ApplyPacer = field(init=False)  # records per slice of item vectors (the same settings)
    item_slices: int = 0  # item-vectors slices applied while serving
    item_hold_max_s: float = 0.0  # ... and the longest hold of the lock by one (its index and offsets)
    item_slice_max: int = 0  # ... and the most records in one

    def batch_served(self, seconds: float) -> None:
        """An engagement batch took `seconds`: counted, and it sizes the slices of parameters and
        item vectors (each a share of a batch's time)."""
        self.agent_s += seconds
        self.param_pacer.served(seconds)
        self.item_pacer.served(seconds)

    def take_param_heads(self, last_records: list) -> None:
        """The parameters replica's last record per partition at start: the version bound."""
        self.param_head = head_version(last_records, self.settings.param_version_step)
        logger.info("parameters head version %d", self.param_head)

    def __post_init__(self) -> None:
        budget_s = self.settings.param_apply_budget_ms / 1000.0
        s = self.settings
        self.param_pacer = ApplyPacer(budget_s, s.param_apply_slice, s.param_apply_share,
                                      min_per_s=s.param_apply_min_per_s)
        self.item_pacer = ApplyPacer(budget_s, s.param_apply_slice, s.param_apply_share,
                                     min_per_s=s.item_apply_min_per_s)
        if self.clock is None:
            self.clock = EventClock(self.settings.future_skew_s, self.settings.watermark_skew_s,
                                    self.settings.late_skew_s)

    def replicas(self) -> list[TopicReplica]:
        """The replicas this worker runs (items; parameters with a hybrid checkpoint)."""
        return [r for r in (self.replicator, self.param_replica) if r is not None]

    def read_before_start(self, record) -> bool:
        """A replica record that was in its topic before this worker started (catch-up)."""
        for r in self.replicas():
            if r.topic == record.topic:
                return record.offset < r.start_ends.get(record.partition, 0)
        return False

    def replicas_current(self) -> bool:
        """Every replica holds what its topic held at start (always, without replicas)."""
        return all(r.caught_up.is_set() for r in self.replicas())

    def replicas_behind(self) -> int:
        """Records all replicas still have to apply to reach their start end offsets."""
        return sum(r.behind() for r in self.replicas())

    async def items_ends(self) -> dict[int, int]:
        """End offsets of `items` now (empty without a broker): what items_current waits for."""
        return {} if self.items_progress is None else await self.items_progress.ends()

    async def items_current(self, ends: dict[int, int], timeout_s: float) -> bool:
        """Every item up to `ends` is encoded by the group (its `items` offsets committed, so
        its vector published) and in this worker's store; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.items_progress is not None and not await self.items_progress.reached(ends):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.25)
        rep = self.replicator
        return rep is None or await rep.catch_up(max(0.0, deadline - time.monotonic()))

    async def snapshot_index(self) -> bool:
        """Snapshot the FAISS index with the item offsets it reflects, if items moved since: a
        copy taken in bounded chunks, each under the lock (the items replica applies under it,
        and engagements are served between them), the disk write outside it, on a thread of its
        own (the engine thread would queue every batch behind the write)."""
        path = self.settings.data_dir / "local" / "index"
        async with self.lock:
            copy = await self.in_engine_thread(self.engine.start_index_copy, path.is_dir())
        if copy is None:
            return False
        try:
            frozen = None
            while frozen is None:  # one chunk per turn of the lock: engagements go in between
                async with self.lock:
                    frozen = await self.in_engine_thread(self.engine.index_copy_step, copy)
        except BaseException:  # cancelled or failed: the index stops journalling for it
            async with self.lock:
                await self.in_engine_thread(self.engine.abandon_index_copy, copy)
            raise
        await asyncio.to_thread(frozen.write, path)
        self.engine.index_written(frozen.offsets)  # the next check compares with it
        logger.info("vector index snapshot at %s", path)
        return True

    async def wait_for_replicas(self) -> None:
        """Serve nothing before every replica holds what its topic held at start, so no valid
        engagement meets a lagging item replica and the first recommendation already uses the
        synced ID rows; past replica_wait_s the worker fails."""
        if self.replicas_current():
            self.start_serving()
            return
        t0 = time.monotonic()
        while not self.replicas_current():
            waited = time.monotonic() - t0
            if waited > self.settings.replica_wait_s:
                raise ReplicaLagError(f"replicas still {self.replicas_behind()} records behind "
                                      f"after {waited:.0f}s (replica_wait_s)")
            step = min(5.0, self.settings.replica_wait_s - waited + 0.01)
            waits = [r.caught_up.wait() for r in self.replicas() if not r.caught_up.is_set()]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), step)
            if not self.replicas_current():
                logger.info("waiting for the replicas: %d records to go", self.replicas_behind())
        self.replica_wait_s = time.monotonic() - t0
        self.metrics.replica_wait.set(self.replica_wait_s)
        logger.info("replicas caught up after %.1fs; serving engagements", self.replica_wait_s)
        self.start_serving()

    def start_serving(self) -> None:
        """Once, when the replicas are current (before the first batch): what is loaded now
        lives as long as the worker."""
        if not self.serving:
            self.serving = True
            logger.info("%d start-up objects frozen out of garbage collection", freeze_startup_objects())

    def fail(self, exc: BaseException, what: str = "engagements agent") -> None:
        """An agent or task cannot go on: exit non-zero at once, so nothing is committed past
        the failure and a supervisor sees it (a faust crash alone leaves an idle worker, or one
        that hangs while stopping)."""
        if isinstance(exc, asyncio.CancelledError):
            return  # shutdown, not a failure
        logger.critical("%s failed, exiting: %r", what, exc, exc_info=exc)
        self.exit(FATAL_EXIT_CODE)

    async def repair(self, partition: int, missing: range) -> list[FetchedEvent]:
        """The records of `missing` (skipped by faust) read from the broker, in offset order."""
        if self.fetcher is None:
            logger.error("engagements %d: offsets [%d, %d) skipped and no fetcher to re-read them",
                         partition, missing.start, missing.stop)
            return []
        records = await self.fetcher.fetch(partition, missing.start, missing.stop)
        self.gaps_repaired += 1
        self.records_reread += len(records)
        # routine after a restart or rebalance (docs/faust-rebalance-gap.md): INFO, not a warning
        logger.info("engagements %d: faust skipped offsets [%d, %d); re-read %d records from the "
                    "broker (gap repairs so far: %d)", partition, missing.start, missing.stop,
                    len(records), self.gaps_repaired)
        return records

    async def baseline(self, partition: int) -> int | None:
        """Expected offset of a partition this worker has no record of (see GapFetcher)."""
        return None if self.fetcher is None else await self.fetcher.baseline(partition)

    async def apply_item_vectors(self, partition: int, records: list) -> None:
        """Item vectors (batched, not encoded) and tombstones in offset order, in slices sized by
        `item_pacer` as the parameters are, so engagement batches are served between them: each
        slice is read, and its vectors up to the first tombstone stored, on prepare_thread
        (neither the event loop nor the engine's thread, no lock), then indexed in one hold of
        the lock with the offset past its last record (a restart resumes at the next slice). A
        record that fails in any way (decode, bounds, key, store, index) is dead-lettered with
        the reason, not applied, and the records around it are."""
        start = 0
        while start < len(records):
            # before serving (catch-up) no engagement batch waits: the largest slices
            step = self.item_pacer.next() if self.serving else self.item_pacer.most
            await self._apply_vector_slice(partition, records[start:start + step])
            start += step

    async def _apply_vector_slice(self, partition: int, records: list) -> None:
        loop = asyncio.get_running_loop()
        read, before = await loop.run_in_executor(self.prepare_thread, self._prepare_vectors, records)
        for rec, got in zip(records, read, strict=True):
            if isinstance(got, Exception):
                await self._bad_vector(rec, got)
        ops = [(rec, got) for rec, got in zip(records, read, strict=True) if not isinstance(got, Exception)]
        end, store_s = records[-1].offset + 1, 0.0
        while True:  # a record that fails to store stops the slice there until its dead letter is out
            async with self.lock:
                failed, took = await self.in_engine_thread(_timed, self._store_slice, ops, partition, end, before)
            store_s = max(store_s, took)
            if failed is None:
                break
            k, exc = failed
            await self._bad_vector(ops[k][0], exc, counted=True)
            ops, before = ops[k + 1:], before[k + 1:]  # stored next, the offsets past it with them
        # sized by the hold alone, as a sync's slices are: the prepare runs beside the batches (a
        # slice's prepare cost, folded in, made a loaded machine's floor slices whole fetches:
        # 4,096 records, holds of 130 ms at 100k items)
        self.item_pacer.took(len(records), store_s)
        if self.serving:
            self.item_slices += 1
            self.item_hold_max_s = max(self.item_hold_max_s, store_s)
            self.item_slice_max = max(self.item_slice_max, len(records))

    def _prepare_vectors(self, records: list) -> tuple[list[ItemVector | str | Exception], list[bytes | None]]:
        """Each record read (see _read_vectors), and the vectors before the first tombstone
        written ahead: with what each replaced (empty: none written ahead)."""
        read = self._read_vectors(records)
        lead: list[ItemVector] = []
        for got in read:
            if isinstance(got, str):
                break
            if not isinstance(got, Exception):
                lead.append(got)
        try:
            before = self.engine.write_ahead(lead)
        except Exception as e:  # the hold of the lock then stores them, a bad record its own
            logger.warning("item-vectors %d@%d: writing the slice ahead failed (%s); stored under the "
                           "lock", records[0].partition, records[0].offset, reason_of(e))
            before = None
        return read, [] if before is None else before

    def _read_vectors(self, records: list) -> list[ItemVector | str | Exception]:
        """Each record decoded and bounded: its vector, the item id of a tombstone, or the
        exception that makes it a dead letter."""
        out: list[ItemVector | str | Exception] = []
        for rec in records:
            try:
                out.append(tombstone_id(rec.key, self.settings.limits) if rec.value is None
                           else read_item_vector(rec.key, rec.value, self.settings.limits))
            except Exception as e:
                out.append(e)
        return out

    def _store_slice(self, ops: list[tuple[object, ItemVector | str]], partition: int,
                     end: int, before: list[bytes | None]) -> tuple[int, Exception] | None:
        """Runs of vectors and tombstones in order (engine thread, under the lock), each with the
        offset past its last record, the slice's last with `end` (past any bad records); the
        first len(before) vectors were written ahead. At a record that fails to store it stops
        with the offsets at that record, so they never pass it before its dead letter is out:
        (its index in ops, the exception); None when all stored."""
        start = 0
        for k, (rec, got) in enumerate(ops):
            if not isinstance(got, str):
                continue
            failed = self._store_run(ops, start, k, partition, rec.offset, before)  # the tombstone not yet
            if failed is not None:
                return failed
            try:
                self._remove_item(got, {partition: end if k == len(ops) - 1 else rec.offset + 1})
            except Exception as exc:
                self._counted(exc)  # the disk or a storm stops the worker before the offsets move
                self.engine.commit_item_offsets({partition: rec.offset})
                return k, exc
            start = k + 1
        failed = self._store_run(ops, start, len(ops), partition, end, before)
        if failed is None and not ops:  # every record was bad: move past them all the same
            self.engine.commit_item_offsets({partition: end})
        return failed

    def _store_run(self, ops: list, start: int, stop: int, partition: int, end: int,
                   before: list[bytes | None]) -> tuple[int, Exception] | None:
        """The vectors ops[start:stop] stored (or, written ahead, indexed) in one call with the
        offset `end`; if it raises, one at a time, stopping at one that fails with the offsets
        at it, its write ahead undone (see _store_slice)."""
        if start >= stop:
            return None
        try:
            self.engine.put_encoded([v for _, v in ops[start:stop]], {partition: end}, stored=stop <= len(before))
            return None
        except Exception as exc:
            if stop - start == 1:
                self._counted(exc)  # the disk or a storm stops the worker before the offsets move
                if start < len(before):  # a dead letter is never applied
                    self.engine.undo_ahead(ops[start][1].item.item_id, before[start])
                self.engine.commit_item_offsets({partition: ops[start][0].offset})
                return start, exc
            logger.error("item vectors batch of %d failed (%r); applying one at a time", stop - start, exc)
        for k in range(start, stop):
            failed = self._store_run(ops, k, k + 1, partition, end if k == stop - 1 else ops[k][0].offset + 1, before)
            if failed is not None:
                return failed
        return None

    def _counted(self, exc: BaseException) -> None:
        """An unexpected failure counts towards a storm; infrastructure and storms re-raise."""
        if not isinstance(exc, InvalidMessage):
            self.breaker.failed(exc)

    async def _bad_vector(self, rec, exc: BaseException, counted: bool = False) -> None:
        if not counted:
            self._counted(exc)
        self.bad_vectors += 1
        logger.info("item-vectors %d@%d rejected: %s", rec.partition, rec.offset, reason_of(exc))
        if self.dead_letter is not None:
            await self.dead_letter(rec, reason_of(exc))

    async def encode_items(self, items: list[dict]) -> list[ItemVector]:
        """Parsed items through the engine's encoder (batched, on the engine thread)."""
        return await self._run(self.engine.encode_items, items)

    async def apply_parameters(self, partition: int, records: list) -> None:
        """ID rows from `parameters` into the engine's ID half, in offset order, in slices, each
        under the engine lock and sized by ApplyPacer (a share of an engagement batch's time, at
        most param_apply_budget_ms), so engagement batches waiting for the lock are served between
        slices and a large sync never stalls recommendations. A slice's reads (decode, gates, the ID
        index's plan) are done before, off the lock, on prepare_thread. A corrupt record is dead-lettered with the reason and not applied (by
        every worker, as each reads them all), the records around it are."""
        if self.engine.param_version is None:  # no replica is built for a content-only checkpoint
            return
        start = 0
        while start < len(records):
            step = self.param_pacer.next()
            await self._apply_slice(partition, records[start:start + step])
            start += step
        if self.id_rows is not None and records:
            async with self.lock:
                await self.in_engine_thread(self.id_rows.applied, self.engine.id_memory, partition,
                                            records[-1].offset + 1)

    async def _apply_slice(self, partition: int, records: list) -> None:
        pairs = [(rec.key, rec.value) for rec in records]
        try:  # the version ceiling only rises until the apply: rows under it now stay under it
            prepared = await asyncio.get_running_loop().run_in_executor(
                self.prepare_thread, self.engine.prepare_parameters, pairs, self._param_ceiling())
        except (OSError, MemoryError):
            raise
        except Exception as e:  # the apply under the lock then does it all, a bad record its own
            logger.warning("parameters %d@%d: reading the slice ahead failed (%s); applied without it",
                           partition, records[0].offset, reason_of(e))
            prepared = None
        async with self.lock:
            t = time.perf_counter()
            outcomes = await self.in_engine_thread(self.engine.apply_parameters, pairs, self._param_ceiling(),
                                                   prepared)
            self.param_pacer.took(len(pairs), time.perf_counter() - t)
            version = self.engine.param_version
        live_from = self.param_replica.start_ends.get(partition, 0) if self.param_replica else 0
        self.params.record(records, outcomes, live_from, version, self.metrics)
        for rec, out in zip(records, outcomes, strict=True):
            if out.reason:
                logger.info("parameters %d@%d rejected: %s", partition, rec.offset, out.reason)
                if self.dead_letter is not None:
                    await self.dead_letter(rec, out.reason)

    def _param_ceiling(self) -> int:
        """The highest parameters version accepted now (a row further ahead is refused)."""
        return max(self.engine.param_version, self.param_head) + self.settings.param_version_step

    def param_snapshot(self) -> dict:
        """The stats file's param_* fields (version and rows None without an ID half)."""
        status = self.engine.status()
        return self.params.snapshot(status["id_version"], status["id_rows"])

    def _remove_item(self, item_id: str, offsets: dict[int, int]) -> None:
        """A tombstone applied (engine thread, under the lock)."""
        if not self.engine.has_item(item_id):
            # normal on a compacted topic whose record was compacted away: counted, not an error
            self.unknown_tombstones += 1
            logger.info("tombstone for unknown item %r", item_id)
        self.engine.remove_items([item_id], offsets)

    async def in_engine_thread(self, fn, *args):
        """fn(*args) on the engine's thread (callers hold `lock` where the engine is touched)."""
        return await asyncio.get_running_loop().run_in_executor(self.engine_thread, functools.partial(fn, *args))

    async def _run(self, fn, *args):
        async with self.lock:
            return await self.in_engine_thread(fn, *args)

    async def process(self, events: list[dict], sources: list[dict],
                      states: dict[str, bytes | None]) -> tuple[list[EventResult], dict[str, bytes]]:
        """Engine call on the users' encoded states: results, and the changed states encoded."""
        async with self.lock:
            return await self.in_engine_thread(self._process, events, sources, states)

    def _process(self, events: list[dict], sources: list[dict],
                 raw: dict[str, bytes | None]) -> tuple[list[EventResult], dict[str, bytes]]:
        states = {u: self._decode(u, b) for u, b in raw.items()}
        out = self.engine.process_batch(events, sources, states)
        release_free_heap()  # once per batch: freed activations would otherwise stay resident
        last = self.engine.last_batch
        self.metrics.stages({"model": last.model_s, "store": last.store_s, "index": last.index_s})
        for st in out.changed.values():
            self.metrics.summary_staleness.observe(st.events_since_summary)
        return out.results, {u: encode_user_state(st) for u, st in out.changed.items()}


    def _decode(self, user_id: str, raw: bytes | None) -> UserState | None:
        """A stored state; one that does not decode starts the user afresh (loudly), since
        refusing it would stop every engagement of the partition behind it."""
        if raw is None:
            return None
        try:
            return decode_user_state(bytes(raw))
        except StateCodecError as e:
            self.metrics.state_errors.inc()
            logger.error("state of user %r does not decode (%s); starting it afresh", user_id[:64], e)
            return None


def _timed(fn, *args):
    """(fn(*args), the seconds it took): timed where it runs, without the wait for its thread."""
    t = time.perf_counter()
    return fn(*args), time.perf_counter() - t


def open_index(config: IndexConfig, items: ItemStore, snapshot: Path):
    """The FAISS index from its snapshot when that reflects the item store's offsets (a clean
    restart of a big catalogue skips re-adding every vector), else rebuilt from the store."""
    from store.faiss_index import FaissIndex

    if snapshot.is_dir():
        try:
            index = FaissIndex.restore(snapshot, config)
            if index.offsets == items.offsets():
                logger.info("vector index restored from %s (%d items)", snapshot, len(index))
                return index, True
            logger.info("index snapshot behind the item store; rebuilding")
        except VectorIndexError as e:
            logger.warning("index snapshot unusable (%s); rebuilding", e)
    index = FaissIndex(config)
    rebuild_from_store(index, items)
    index.finish_rebuild()  # start-up serves nothing yet: wait for the IVF rather than go exact
    return index, False


def build_runtime(settings: WorkerSettings, model: EmbSumInference, version: str) -> Runtime:
    """Engine over a rocksdict item store + token cache in data_dir; the index restored from its
    snapshot or rebuilt from the store."""
    local = settings.data_dir / "local"
    local.mkdir(parents=True, exist_ok=True)
    items = ItemStore.open(local / "items", settings.rocks_memory, settings.item_cache_bytes)
    if dropped := items.drop_legacy():
        logger.info("item store from before item-vectors: %d records dropped, re-read from the "
                    "item-vectors topic", dropped)
    index, _ = open_index(IndexConfig(dim=model.dim, scan_rows=settings.index_scan_rows), items, local / "index")
    cache = BoundedCache.open(local / "token-cache", CacheConfig(max_bytes=settings.token_cache_bytes),
                              settings.rocks_memory)
    id_rows = LocalIdRows(local / "id-rows", checkpoint_tag(settings.checkpoint)) if settings.checkpoint else None
    id_half = id_rows.open(settings.checkpoint) if id_rows is not None else None
    engine = Engine(model, items=items, index=index, states=BytesStateMapping({}), token_cache=cache,
                    config=settings.engine_config(model.config, version), id_half=id_half)
    runtime = Runtime(settings, engine)
    k, security = settings.kafka, settings.kafka.aiokafka_security_kwargs()
    # every worker reads every item vector; the items themselves are encoded by the group
    runtime.replicator = TopicReplica(k, k.topic("item-vectors"), runtime.apply_item_vectors,
                                      items.offsets(), security, name="item-vectors")
    if id_half is None:
        logger.info("content-only checkpoint: the parameters topic is not read")
    else:  # from the offsets the local rows reflect ({} on an empty disk: from the beginning)
        runtime.id_rows = id_rows
        runtime.param_replica = TopicReplica(k, k.topic("parameters"), runtime.apply_parameters,
                                             dict(id_rows.offsets or {}), security, name="parameters",
                                             heads=runtime.take_param_heads)
        runtime.metrics.param_version.set(id_half.memory.version)
    runtime.fetcher = GapFetcher(k, k.topic("engagements"), settings.group_id, security)
    runtime.items_progress = GroupProgress(k, k.topic("items"), settings.items_group_id, security)
    return runtime
