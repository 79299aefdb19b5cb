"""One micro-batch of the engagements agent: sequence (repair gaps, drop redeliveries), validate,
engine call, send, write tables.

A redelivery (an offset below the partition's recorded next offset) is dropped only when its
user's state records it as applied: the two tables reach their changelogs independently, so
after a kill -9 the offsets table can be ahead of a state, and then the state decides (the
engagement is handled again). A dropped redelivery writes its user's state again, so a state
that reached the local store but not its changelog before a kill reaches it now.

Each record is isolated (streams/worker/isolation.py): any exception while validating it is
its dead letter; when the engine call fails for the batch, the batch is retried record by
record (states threaded from one to the next), so the poison is dead-lettered and every other
record gets its recommendation and state write.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust import streams as faust_streams

from store import StateCodecError, peek_user_state
from streams.kafka.messages import (
    InvalidMessage,
    check_key,
    dumps,
    parse_engagement,
    reason_of,
    source_ref,
)
from streams.worker.event_time import EventClock
from streams.worker.isolation import PoisonBreaker
from streams.worker.offsets import PartitionCursor, Verdict
from streams.worker.outbox import Outbox
from streams.worker.runtime import Runtime
from streams.worker.topics import Tables, Topics

logger = logging.getLogger(__name__)


@contextmanager
def acting_as(event) -> Iterator[None]:
    """Make `event` faust's current event for table reads/writes.

    After stream.take the current event is the batch's last one, and faust reads and
    writes a table key in the local DB (and changelog partition) of the current event's
    partition; each user's key must use its own engagement's partition instead.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def offset_key(partition: int) -> bytes:
    """Key of a partition's next expected offset in the offsets table."""
    return str(partition).encode()


async def _in_sequence(events: list, runtime: Runtime,
                       tables: Tables) -> tuple[list, PartitionCursor, dict[str, object]]:
    """The batch with skipped offsets re-read in front of the event that revealed them and
    redeliveries its users' states hold dropped (streams/worker/offsets.py); the cursor after
    it; and user -> a dropped redelivery of theirs (their states are written again)."""
    first: dict[int, object] = {}
    for ev in events:
        first.setdefault(ev.message.partition, ev)
    expected: dict[int, int | None] = {}
    for partition, ev in first.items():
        # the key lives in the partition's own store and changelog: read it as that partition
        with acting_as(ev):
            raw = tables.offsets.get(offset_key(partition))
        expected[partition] = int(raw) if raw is not None else await runtime.baseline(partition)
    cursor = PartitionCursor.starting_at(expected)
    ordered, held, applied = [], {}, {}
    for ev in events:
        msg = ev.message
        decision = cursor.check(msg.partition, msg.offset)
        if decision.verdict is Verdict.DUPLICATE:
            user = _state_holds(ev, tables, applied)
            if user is not None:
                logger.info("skipping redelivered engagement %d@%d", msg.partition, msg.offset)
                runtime.duplicates_skipped += 1
                held[user] = ev
            else:  # recorded as handled, but its user's state lacks it: a lost state write
                logger.info("redelivered engagement %d@%d is not in its user's state; handling "
                            "it again", msg.partition, msg.offset)
                runtime.redeliveries_reapplied += 1
                ordered.append(ev)
            continue
        if decision.verdict is Verdict.REPAIR:
            ordered += await runtime.repair(msg.partition, decision.missing)
        cursor.accept(msg.partition, msg.offset)
        ordered.append(ev)
    return ordered, cursor, held


def _state_holds(ev, tables: Tables, applied: dict[str, dict[int, int]]) -> str | None:
    """The user of redelivered `ev` when their stored state records its offset (or a later one)
    as applied, else None (no state, a state that does not decode, a key that is no user id:
    the record goes through the normal path again, which decides). `applied` caches states."""
    msg = ev.message
    try:
        user = bytes(msg.key).decode("utf-8")
    except (TypeError, UnicodeDecodeError):
        return None
    if user not in applied:
        with acting_as(ev):
            raw = tables.states.get(user.encode())
        try:
            applied[user] = {} if raw is None else peek_user_state(bytes(raw)).applied
        except StateCodecError:
            applied[user] = {}
    return user if applied[user].get(msg.partition, -1) >= msg.offset else None


async def _validate(events: list, outbox: Outbox, clock: EventClock,
                    breaker: PoisonBreaker) -> list[tuple[object, dict]]:
    """Parsed (event, engagement) pairs; bad records dead-lettered, whatever they raised."""
    valid = []
    for ev in events:
        try:
            eng = parse_engagement(ev.message.value, outbox.limits)
            check_key(eng, ev.message.key)
            clock.check(ev.message.partition, eng["ts"])
        except InvalidMessage as e:
            await outbox.dead_letter(ev.message, str(e))
            continue
        except Exception as e:  # nobody listed it: still this record's, not the worker's
            breaker.failed(e)
            await outbox.dead_letter(ev.message, reason_of(e))
            continue
        valid.append((ev, eng))
    return valid


async def handle_batch(events: list, runtime: Runtime, topics: Topics, tables: Tables) -> None:
    """One take() batch, in a straight line: sequence, validate, engine, send, write states,
    record offsets; one message out per engagement (a recommendation or a dead letter)."""
    ordered, cursor, held = await _in_sequence(events, runtime, tables)
    runtime.metrics.events.inc(len(ordered))
    outbox = Outbox(topics.recommendations, topics.deadletter, runtime.settings.limits,
                    counts=runtime.send_counts, metrics=runtime.metrics)
    valid = await _validate(ordered, outbox, runtime.clock, runtime.breaker)
    results, changed = [], {}
    if valid:
        await _items_caught_up(valid, runtime)
        valid, results, changed = await _run_engine(valid, runtime, tables, outbox)
    t0 = time.perf_counter()
    await _send_results(valid, results, outbox)
    await outbox.flush()
    _write_states(valid, changed, tables)
    _rewrite_held(held, changed, tables)
    runtime.metrics.stages({"kafka": time.perf_counter() - t0})
    # after the sends and state writes: a crash before this re-handles, never skips
    _record_offsets(events + ordered, cursor, {ev.message.partition for ev in held.values()},
                    runtime, tables)
    done = time.monotonic()  # when the batch ended: a long batch is not a silent partition
    runtime.delivered_at.update({ev.message.partition: done for ev in events})


def _record_offsets(events: list, cursor: PartitionCursor, redelivered: set[int], runtime: Runtime,
                    tables: Tables) -> None:
    """Each partition's next expected offset, in its own changelog partition: where it moved,
    and (written again) where a redelivery showed the changelog may lag the local store."""
    anchor = {ev.message.partition: ev for ev in events}
    for partition in cursor.moved | {p for p in redelivered if cursor.expected.get(p) is not None}:
        with acting_as(anchor[partition]):
            tables.offsets[offset_key(partition)] = str(cursor.expected[partition]).encode()
        runtime.handled[partition] = cursor.expected[partition]


def _rewrite_held(held: dict[str, object], changed: dict[str, bytes], tables: Tables) -> None:
    """The stored state of each user with a dropped redelivery, written again (to the local
    store, and so to its changelog), unless the batch wrote a newer one."""
    for user, ev in held.items():
        if user in changed:
            continue
        with acting_as(ev):
            raw = tables.states.get(user.encode())
            if raw is not None:
                tables.states[user.encode()] = raw


async def _run_engine(valid: list[tuple[object, dict]], runtime: Runtime, tables: Tables,
                      outbox: Outbox) -> tuple[list[tuple[object, dict]], list, dict[str, bytes]]:
    """(records kept, their results, changed states): one engine call for the batch; if it
    raises, one call per record in order, each user's state carried to its next record, and
    a record whose own call raises is dead-lettered (it never reaches the state)."""
    sources = [source_ref(ev.message.topic, ev.message.partition, ev.message.offset,
                          ev.message.timestamp) for ev, _ in valid]
    states = _read_states(valid, tables)
    try:
        results, changed = await runtime.process([e for _, e in valid], sources, states)
        runtime.breaker.succeeded()
        return valid, results, changed
    except Exception as exc:
        if len(valid) > 1:
            logger.error("engine failed on a batch of %d (%r); retrying record by record",
                         len(valid), exc)
            return await _one_by_one(valid, sources, states, runtime, outbox)
        runtime.breaker.failed(exc)
        await outbox.dead_letter(valid[0][0].message, reason_of(exc))
        return [], [], {}


async def _one_by_one(valid: list[tuple[object, dict]], sources: list[dict],
                      states: dict[str, bytes | None], runtime: Runtime,
                      outbox: Outbox) -> tuple[list[tuple[object, dict]], list, dict[str, bytes]]:
    kept, results, changed = [], [], {}
    for (ev, eng), src in zip(valid, sources, strict=True):
        user = eng["user_id"]
        try:
            res, ch = await runtime.process([eng], [src], {user: changed.get(user, states[user])})
        except Exception as e:
            runtime.breaker.failed(e)
            logger.warning("engagement %d@%d dead-lettered: %r", ev.message.partition,
                           ev.message.offset, e)
            await outbox.dead_letter(ev.message, reason_of(e))
            continue
        runtime.breaker.succeeded()
        kept.append((ev, eng))
        results += res
        changed.update(ch)
    return kept, results, changed


async def _items_caught_up(valid: list[tuple[object, dict]], runtime: Runtime) -> None:
    """An unknown item may be on its way (replay sends an item just before its first
    engagement, and a worker of the group encodes it): wait until every item in `items` now
    has its vector in this worker's store, however long it takes, so only an item that is
    really unknown is dead-lettered."""
    if runtime.replicator is None or all(runtime.engine.has_item(e["item_id"]) for _, e in valid):
        return
    ends = await runtime.items_ends()
    while not await runtime.items_current(ends, runtime.settings.item_wait_s):
        runtime.replica_stalls += 1
        logger.warning("items not current after %.0fs (item-vectors replica %d records behind "
                       "its start ends); engagements wait", runtime.settings.item_wait_s,
                       runtime.replicator.behind())


def _last_event_per_user(valid: list[tuple[object, dict]]) -> dict[str, object]:
    return {e["user_id"]: ev for ev, e in valid}


def _read_states(valid: list[tuple[object, dict]], tables: Tables) -> dict[str, bytes | None]:
    """Each user's stored state, read as its own engagement's partition."""
    states = {}
    for user, ev in _last_event_per_user(valid).items():
        with acting_as(ev):
            states[user] = tables.states.get(user.encode())
    return states


async def _send_results(valid: list[tuple[object, dict]], results: list, outbox: Outbox) -> None:
    for (ev, eng), res in zip(valid, results, strict=True):
        if res.recommendation is not None:
            try:
                key, value = eng["user_id"].encode(), dumps(res.recommendation)
            except Exception as e:  # e.g. text the encoder cannot write: this record's alone
                await outbox.dead_letter(ev.message, reason_of(e))
                continue
            await outbox.recommend(key, value, ev.message)
        elif res.error is not None:
            await outbox.dead_letter(ev.message, res.error)


def _write_states(valid: list[tuple[object, dict]], changed: dict[str, bytes],
                  tables: Tables) -> None:
    """The engine's changed states into the table (and so its changelog partition)."""
    last = _last_event_per_user(valid)
    for user, raw in changed.items():
        with acting_as(last[user]):
            tables.states[user.encode()] = raw
