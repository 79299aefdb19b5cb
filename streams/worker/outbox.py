"""The records one engagements batch sends: bounded below the producer's request size,
retried, and dead-lettered when they cannot go out.

A record that cannot be sent must never stop the agent with offsets committed past it (a
live but idle worker). So: an output too big for the producer is replaced by a dead letter
before it is sent; a failed send is retried; a record that still fails is dead-lettered with
a bounded payload; and when even the dead letter fails, FatalSendError tells the agent to
take the worker down (non-zero exit) rather than carry on without it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from streams.errors import ThreadrecError
from streams.kafka.messages import MessageLimits, deadletter_record, dumps
from streams.worker.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

# topic name, partition, offset, timestamp, headers... of a record on the wire
RECORD_OVERHEAD_BYTES = 512


class FatalSendError(ThreadrecError):
    """A dead letter could not be sent either: the worker must stop, not skip the record."""


@dataclass
class _Pending:
    topic: object  # faust topic
    key: bytes | None
    value: bytes
    origin: object  # the faust Message this record answers
    is_deadletter: bool
    future: object | None = None  # delivery future; None when the send itself raised
    error: BaseException | None = None


@dataclass
class Outbox:
    """Send now, confirm delivery in flush(); every output answers one source record."""

    recommendations: object  # faust topic
    deadletter: object  # faust topic
    limits: MessageLimits
    pending: list[_Pending] = field(default_factory=list)
    # dead_letters, send_retries, outputs_dead_lettered
    counts: Counter = field(default_factory=Counter)
    metrics: WorkerMetrics | None = None

    async def recommend(self, key: bytes, value: bytes, origin) -> None:
        """Send a recommendation, or dead-letter its source when it is over the size bound."""
        size = len(key) + len(value) + RECORD_OVERHEAD_BYTES
        if size > self.limits.message_bytes:
            self.counts["outputs_dead_lettered"] += 1
            await self.dead_letter(origin, f"oversize output: recommendation of {size} bytes > "
                                           f"{self.limits.message_bytes}")
            return
        await self._send(_Pending(self.recommendations, key, value, origin, False))

    async def dead_letter(self, origin, error: str) -> None:
        """Send a bounded dead letter for `origin` (a faust Message) with the reason."""
        rec = deadletter_record(origin.topic, origin.partition, origin.offset, origin.key,
                                origin.value, error, self.limits)
        key = None if origin.key is None else origin.key[: self.limits.id_bytes]
        self.counts["dead_letters"] += 1
        if self.metrics is not None:
            self.metrics.dead_letter(origin.topic, error)
        await self._send(_Pending(self.deadletter, key, dumps(rec), origin, True))

    async def _send(self, p: _Pending) -> None:
        try:
            p.future = await p.topic.send(key=p.key, value=p.value)
        except Exception as e:  # the producer refused it at once (size, closed, ...)
            p.error = e
        self.pending.append(p)

    async def flush(self) -> None:
        """Wait for every delivery; retry failures, then dead-letter them; FatalSendError last."""
        pending, self.pending = self.pending, []
        for p in pending:
            if p.error is None:
                try:
                    await p.future
                    self._delivered(p)
                    continue
                except Exception as e:
                    p.error = e
            await self._recover(p)

    def _delivered(self, p: _Pending) -> None:
        if self.metrics is not None and not p.is_deadletter:
            self.metrics.sent([getattr(p.origin, "timestamp", None)])

    async def _recover(self, p: _Pending) -> None:
        logger.warning("send to %s failed (%r); retrying", p.topic, p.error)
        try:
            await self._send_retrying(p)
            self._delivered(p)
            return
        except Exception as e:
            p.error = e
        if p.is_deadletter:
            raise FatalSendError(f"dead letter for {p.origin.topic} {p.origin.partition}@"
                                 f"{p.origin.offset} could not be sent: {p.error!r}") from p.error
        self.counts["outputs_dead_lettered"] += 1
        await self.dead_letter(p.origin, f"send failed: {type(p.error).__name__}: {p.error}")
        await self.flush()

    async def _send_retrying(self, p: _Pending) -> None:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.limits.send_attempts),
                                 wait=wait_exponential(multiplier=0.1, max=2.0), reraise=True)
        async for attempt in retrying:
            with attempt:
                self.counts["send_retries"] += 1
                if self.metrics is not None:
                    self.metrics.send_retries.inc()
                await (await p.topic.send(key=p.key, value=p.value))
