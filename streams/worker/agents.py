"""Thin faust agents: micro-batch engagements into the engine; replicate items and parameters
in tasks."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import faust

from store.thread_priority import lower_thread_priority
from streams.engine.pacer import LaneDuty
from streams.kafka.group_relay import GroupRelay
from streams.kafka.ledger import DeadLetterLedger
from streams.worker.batch import handle_batch
from streams.worker.item_publisher import ItemPublisher
from streams.worker.outbox import Outbox
from streams.worker.runtime import Runtime
from streams.worker.tails import watch_tails
from streams.worker.timers import safe_timer
from streams.worker.topics import Tables, Topics

logger = logging.getLogger(__name__)


def fatal_on_error(runtime: Runtime, what: str, app: faust.App) -> Callable:
    """Wrap a task so that any exception, or a cancellation while the app is not stopping, ends
    the process (Runtime.fail): never an idle or hanging worker with a task gone."""

    def wrap(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(fn)
        async def guarded() -> None:
            try:
                await fn()
            except asyncio.CancelledError:
                if not app.should_stop:  # killed, not shut down: the worker lost a task
                    runtime.fail(RuntimeError(f"{what} task cancelled"), what)
                raise
            except BaseException as exc:  # noqa: B036 - anything else is fatal too
                runtime.fail(exc, what)
                raise
        return guarded

    return wrap


def register_agents(app: faust.App, topics: Topics, tables: Tables, runtime: Runtime) -> None:
    """The engagements agent and the replica tasks (items, parameters) of one worker."""
    size, within = runtime.settings.batch_size, runtime.settings.batch_within_s

    @app.agent(topics.engagements, name="engagements")
    async def engagements(stream) -> None:
        async for events in stream.take_events(size, within=within):
            t0 = time.perf_counter()
            try:
                async with runtime.batch_lock:  # a tail re-read (tails.py) waits for it
                    await runtime.wait_for_replicas()  # at once after the first time
                    await handle_batch(events, runtime, topics, tables)
            except BaseException as exc:  # noqa: B036 - any failure here must stop the worker
                runtime.fail(exc)
                raise
            runtime.batch_served(time.perf_counter() - t0)

    runtime.dead_letter = replica_dead_letters(topics, runtime)
    register_items_agent(app, runtime)

    @safe_timer(app, runtime.settings.index_snapshot_every_s, "vector index snapshot failed")
    async def snapshot_index() -> None:
        await runtime.snapshot_index()

    @app.task
    @fatal_on_error(runtime, "items replica", app)
    async def replicate_items() -> None:
        if runtime.replicator is not None:
            await runtime.replicator.run()

    register_summary_lane(app, runtime)

    @app.task
    @fatal_on_error(runtime, "engagements tail re-read", app)
    async def reread_tails() -> None:
        await watch_tails(app, runtime, topics, tables)

    @app.task
    @fatal_on_error(runtime, "start-up freeze", app)
    async def freeze_when_ready() -> None:  # before the first engagement, when nothing waits on it
        while not (runtime.serving or runtime.replicas_current()):
            await asyncio.sleep(0.2)
        runtime.start_serving()

    @app.task
    @fatal_on_error(runtime, "parameters replica", app)
    async def replicate_parameters() -> None:
        if runtime.param_replica is not None:
            await runtime.param_replica.run()


def register_items_agent(app: faust.App, runtime: Runtime) -> None:
    """The items task: this worker's partitions of `items` (its own consumer group) encoded and
    published to item-vectors (streams/worker/item_publisher.py); offsets commit after delivery."""
    s, k = runtime.settings, runtime.settings.kafka
    relay = GroupRelay(k, k.topic("items"), k.topic("item-vectors"), s.items_group_id,
                       s.item_batch_size)
    publisher = ItemPublisher(runtime, relay.send, runtime.dead_letter or _no_dead_letter)

    @app.task
    @fatal_on_error(runtime, "items encoder", app)
    async def encode_items() -> None:
        await relay.run(publisher.handle)


async def _no_dead_letter(record, error: str) -> None:
    logger.warning("no dead-letter topic: %s %d@%d dropped (%s)", record.topic, record.partition,
                   record.offset, error)


def replica_dead_letters(topics: Topics, runtime: Runtime) -> Callable:
    """How a replica or the items encoder dead-letters a bad record: once per deployment, not
    once per start (a record read before this start, or an `items` record, which a restart or
    rebalance may redeliver, is looked up in the deadletter topic first)."""
    ledger = DeadLetterLedger(runtime.settings.kafka, runtime.settings.kafka.topic("deadletter"))
    items_topic = runtime.settings.kafka.topic("items")

    async def dead_letter_replicated(record, error: str) -> None:
        source = (record.topic, record.partition, record.offset)
        maybe_known = record.topic == items_topic or runtime.read_before_start(record)
        if maybe_known and await ledger.holds(source):
            runtime.replica_letters_known += 1  # dead-lettered by an earlier start or worker
            return
        outbox = Outbox(topics.recommendations, topics.deadletter, runtime.settings.limits,
                        counts=runtime.send_counts, metrics=runtime.metrics)
        await outbox.dead_letter(record, error)
        await outbox.flush()
        ledger.add(source)

    return dead_letter_replicated


def register_summary_lane(app: faust.App, runtime: Runtime) -> None:
    """A task running the engine's summary lane, if it has one (streams/engine/summary_lane.py)."""

    @app.task
    @fatal_on_error(runtime, "summary lane", app)
    async def summary_lane() -> None:
        engine = runtime.engine
        # one thread (one malloc arena, as the engine's), nicer than the engine's
        thread = ThreadPoolExecutor(1, thread_name_prefix="summary-lane", initializer=lower_thread_priority,
                                    initargs=(runtime.settings.lane_nice,))
        loop = asyncio.get_running_loop()
        yield_s, duty = runtime.settings.lane_yield_s, LaneDuty(runtime.settings.lane_busy_share)
        while engine.config.summary_lane:  # its own thread, not under the engine lock: never blocks a batch
            busy, start = runtime.lock.locked(), time.monotonic()
            # between batches, or when overdue and rested
            ready = engine.lane_due(busy, yield_s) and duty.allows(busy, start)
            try:
                done = await loop.run_in_executor(thread, engine.run_lane) if ready else 0
            except Exception:  # a lost summary is regenerated at the next refresh
                logger.warning("summary lane batch failed", exc_info=True)
                done = 0
            if ready:
                duty.ran(busy, time.monotonic() - start, time.monotonic())
            if not done:
                await asyncio.sleep(0.01)
