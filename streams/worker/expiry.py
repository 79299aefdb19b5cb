"""The expiry sweep: users inactive for ttl_s of event time are dropped from the user-state
table on a timer (a tombstone in the changelog), not only when their next event arrives.

Event time is the partition's watermark (worker/event_time.py), so a replay of old data
expires users as the replay moves, and a stream that stops expires nobody. A partition with
no watermark yet (just after a restart) is skipped until its first event.
"""

from __future__ import annotations

import logging

from store import StateCodecError, UserState, decode_user_state
from streams.kafka.gap_fetcher import FetchedEvent, FetchedMessage
from streams.worker.batch import acting_as
from streams.worker.runtime import Runtime
from streams.worker.timers import safe_timer
from streams.worker.topics import Tables

logger = logging.getLogger(__name__)


def home_partition(state: UserState) -> int | None:
    """The engagements partition of the user's latest applied event (its table partition)."""
    if not state.applied:
        return None
    return max(state.applied, key=lambda p: state.applied[p])


def sweep_expired(runtime: Runtime, tables: Tables, engagements_topic: str) -> int:
    """Delete every user whose last_seen is more than ttl_s behind its partition's watermark."""
    ttl, marks = runtime.engine.config.ttl_s, runtime.clock.watermarks
    stale: list[tuple[bytes, int]] = []
    for key, raw in list(tables.states.items()):
        try:
            st = decode_user_state(bytes(raw))
        except StateCodecError as e:  # leave it to the engagement path, which reports it
            logger.warning("expiry sweep skips %r: %s", key[:64], e)
            continue
        part = home_partition(st)
        if part is not None and part in marks and marks[part] - st.last_seen > ttl:
            stale.append((key, part))
    for key, part in stale:
        # the delete goes to the user's own changelog partition, as its writes did
        with acting_as(FetchedEvent(FetchedMessage(engagements_topic, part, -1, key, None, 0.0))):
            del tables.states[key]
    if stale:
        logger.info("expired %d inactive users (ttl %.0fs of event time)", len(stale), ttl)
    runtime.engine.stats.expired += len(stale)
    return len(stale)


def register_expiry_sweep(app, runtime: Runtime, tables: Tables, engagements_topic: str,
                          every_s: float) -> None:
    """A faust timer that runs the sweep every `every_s` seconds."""

    @safe_timer(app, every_s, "expiry sweep failed")
    async def expire_inactive() -> None:
        sweep_expired(runtime, tables, engagements_topic)
