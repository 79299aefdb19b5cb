"""One micro-batch of the engagements agent: validate, dedupe, engine call, send, write tables."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust import streams as faust_streams

from streams.messages import (
    InvalidMessage,
    deadletter_record,
    dumps,
    parse_engagement,
    source_ref,
)
from streams.topics import Tables, Topics
from streams.worker_runtime import Runtime

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


async def dead_letter(topics: Topics, msg, error: str) -> None:
    rec = deadletter_record(msg.topic, msg.partition, msg.offset, msg.key, msg.value, error)
    await topics.deadletter.send(key=msg.key, value=dumps(rec))


async def _validate(events: list, topics: Topics, tables: Tables) -> list[tuple[object, dict]]:
    """Parsed (event, engagement) pairs; bad records dead-lettered, redeliveries dropped."""
    valid = []
    for ev in events:
        try:
            eng = parse_engagement(ev.message.value)
        except InvalidMessage as e:
            await dead_letter(topics, ev.message, str(e))
            continue
        with acting_as(ev):
            applied = tables.applied.get(eng["user_id"].encode())
        if applied is not None and ev.message.offset <= int(applied):
            logger.info("skipping redelivered engagement %s", ev.message.offset)
            continue
        valid.append((ev, eng))
    return valid


async def handle_batch(events: list, runtime: Runtime, topics: Topics, tables: Tables) -> None:
    """Everything one take() batch needs; one message out per valid engagement."""
    valid = await _validate(events, topics, tables)
    if not valid:
        return
    known = runtime.engine.items
    if runtime.replicator and any(e["item_id"] not in known for _, e in valid):
        # replay sends an item before its first engagement: let the item replica catch up
        await runtime.replicator.catch_up(runtime.settings.item_wait_s)
    last = {e["user_id"]: ev for ev, e in valid}
    states: dict[str, bytes | None] = {}
    for user, ev in last.items():
        with acting_as(ev):
            states[user] = tables.states.get(user.encode())
    before = dict(states)
    sources = [source_ref(ev.message.topic, ev.message.partition, ev.message.offset,
                          ev.message.timestamp) for ev, _ in valid]
    results = await runtime.process([e for _, e in valid], sources, states)
    for (ev, eng), res in zip(valid, results, strict=True):
        if res.recommendation is not None:
            await topics.recommendations.send(key=eng["user_id"].encode(),
                                              value=dumps(res.recommendation))
        elif res.error is not None:
            await dead_letter(topics, ev.message, res.error)
    for user, ev in last.items():
        with acting_as(ev):
            if states.get(user) is not None and states[user] is not before[user]:
                tables.states[user.encode()] = states[user]
            tables.applied[user.encode()] = str(ev.message.offset).encode()
