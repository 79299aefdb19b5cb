"""Re-reads the end of an engagements partition that faust stopped delivering.

faust can drop records it fetched at start-up (docs/faust-rebalance-gap.md). The batch path
repairs such a gap when a later record of the partition arrives; records dropped at the very
end of a partition have no later record, so with a quiet producer they would wait forever
(a chaos run lost the last 18 engagements of a partition that way). So, while the worker is
ready, a partition that delivered nothing for tail_wait_s and whose log end is past its
recorded next offset is re-read from the broker and handled as one batch, under the same
lock as the agent's batches. A later delivery of the same records is a redelivery and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust

from streams.kafka.gap_fetcher import FetchedEvent, FetchedMessage
from streams.worker.batch import acting_as, handle_batch, offset_key
from streams.worker.runtime import Runtime
from streams.worker.stats import worker_ready
from streams.worker.topics import Tables, Topics

logger = logging.getLogger(__name__)


async def watch_tails(app: faust.App, runtime: Runtime, topics: Topics, tables: Tables) -> None:
    """Forever: every half tail_wait_s, re-read the stalled partition ends (repair_tails)."""
    ready_since: float | None = None
    while True:
        await asyncio.sleep(max(0.5, runtime.settings.tail_wait_s / 2))
        if not (runtime.serving and worker_ready(app)):
            ready_since = None  # a rebalance or start-up: faust delivers first
            continue
        ready_since = ready_since or time.monotonic()
        await repair_tails(_engagement_partitions(app, topics), runtime, topics, tables,
                           ready_since)


def _engagement_partitions(app: faust.App, topics: Topics) -> list[int]:
    name = topics.engagements.get_topic_name()
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name)


async def repair_tails(partitions: list[int], runtime: Runtime, topics: Topics, tables: Tables,
                       ready_since: float) -> int:
    """Handle what the broker holds past the recorded next offset of each of `partitions` that
    delivered nothing for tail_wait_s (at most batch_size records each); records handled."""
    if runtime.fetcher is None:
        return 0
    idle = _idle(partitions, runtime, ready_since)
    if not idle:
        return 0
    try:
        ends = await runtime.fetcher.ends(idle)
    except Exception as e:  # the broker did not answer: the next check asks again
        logger.warning("engagements: no end offsets for %s (%r); tails checked later", idle, e)
        return 0
    handled = 0
    async with runtime.batch_lock:  # between the agent's batches
        for partition in _idle(idle, runtime, ready_since):
            expected = await _expected(partition, runtime, tables, topics)
            end = ends.get(partition)
            if expected is None or end is None or expected >= end:
                continue
            stop = min(end, expected + runtime.settings.batch_size)
            logger.warning("engagements %d: nothing delivered for %.0fs with offsets [%d, %d) in "
                           "the log; re-reading them", partition, runtime.settings.tail_wait_s,
                           expected, end)
            events = await runtime.repair(partition, range(expected, stop))
            runtime.tails_repaired += 1
            if events:
                await handle_batch(events, runtime, topics, tables)
            runtime.delivered_at[partition] = time.monotonic()
            handled += len(events)
    return handled


def _idle(partitions: list[int], runtime: Runtime, ready_since: float) -> list[int]:
    now, wait = time.monotonic(), runtime.settings.tail_wait_s
    return [p for p in partitions if now - max(runtime.delivered_at.get(p, 0.0), ready_since) >= wait]


async def _expected(partition: int, runtime: Runtime, tables: Tables, topics: Topics) -> int | None:
    """The partition's recorded next offset (read as that partition), else its baseline."""
    name = topics.engagements.get_topic_name()
    stand_in = FetchedEvent(FetchedMessage(name, partition, -1, None, None, 0.0))
    with acting_as(stand_in):
        raw = tables.offsets.get(offset_key(partition))
    return int(raw) if raw is not None else await runtime.baseline(partition)
