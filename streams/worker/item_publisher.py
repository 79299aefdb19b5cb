"""The items encoder's work: items are encoded once per deployment, not once per worker.

The workers consume `items` as one consumer group (streams/kafka/group_relay.py), so each
encodes the items of its own partitions; the
vectors go to the compacted `item-vectors` topic (keyed by item_id, tombstones forwarded) that
every worker's replica reads without encoding. A batch returns only once every vector and dead
letter is delivered, so the group's `items` offsets commit after the vectors exist
(at-least-once; a re-published vector is an idempotent upsert).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from store import ItemVector, StateCodecError, check_item_vector, encode_item_vector
from streams.kafka.messages import (
    InvalidMessage,
    check_item_key,
    parse_item,
    reason_of,
    tombstone_id,
    vector_bounds,
)
from streams.worker.outbox import RECORD_OVERHEAD_BYTES
from streams.worker.runtime import Runtime

logger = logging.getLogger(__name__)

Send = Callable[[bytes, bytes | None], Awaitable[Awaitable]]  # (key, value) -> delivery future
DeadLetter = Callable[[object, str], Awaitable[None]]  # (source record, reason)


@dataclass
class ItemPublisher:
    """Parse, validate, encode (batched) and publish one batch of `items` records."""

    runtime: Runtime
    send: Send  # to item-vectors, partitioned by key like `items`
    dead_letter: DeadLetter
    published: int = 0  # vectors sent
    tombstones: int = 0  # tombstones forwarded

    async def handle(self, records: list) -> None:
        """Records of `items` in offset order: a vector or tombstone out for each good one, a
        dead letter (with the reason) for each bad one; returns once all are delivered."""
        parsed: list[tuple[object, dict | None]] = []
        for rec in records:
            try:
                parsed.append((rec, self._parse(rec)))
            except Exception as e:
                await self._bad(rec, e)
        encoded = await self._encode([(k, rec, it) for k, (rec, it) in enumerate(parsed)
                                      if it is not None])
        futures = []
        for k, (rec, item) in enumerate(parsed):
            if item is None:
                futures.append(await self.send(rec.key, None))
                self.tombstones += 1
            elif k in encoded:
                futures.append(await self.send(rec.key, encoded[k]))
                self.published += 1
        for f in futures:  # a failed delivery raises: the worker stops before the offsets commit
            await f

    def _parse(self, rec) -> dict | None:
        """The parsed item, or None for a valid tombstone; raises InvalidMessage."""
        limits = self.runtime.settings.limits
        if rec.value is None:
            tombstone_id(rec.key, limits)
            return None
        item = parse_item(rec.value, limits)
        check_item_key(item, rec.key)
        return item

    async def _encode(self, pending: list[tuple[int, object, dict]]) -> dict[int, bytes]:
        """position -> encoded vector bytes, in one encoder call; if it raises, one at a time,
        dead-lettering the items that fail."""
        if not pending:
            return {}
        try:
            vectors = await self.runtime.encode_items([it for _, _, it in pending])
        except Exception as exc:
            if len(pending) == 1:
                await self._bad(pending[0][1], exc)
                return {}
            logger.error("items batch of %d failed to encode (%r); one at a time", len(pending), exc)
            out: dict[int, bytes] = {}
            for one in pending:
                out.update(await self._encode([one]))
            return out
        out = {}
        for (k, rec, _), vec in zip(pending, vectors, strict=True):
            try:
                out[k] = self._checked(vec)
            except InvalidMessage as e:
                await self._bad(rec, e)
        return out

    def _checked(self, vec: ItemVector) -> bytes:
        """The vector's bytes, once it passes the bounds every replica applies to it."""
        limits = self.runtime.settings.limits
        try:
            check_item_vector(vec, vector_bounds(limits))
        except StateCodecError as e:
            raise InvalidMessage("bad item vector", str(e)) from e
        raw = encode_item_vector(vec)
        if len(raw) + RECORD_OVERHEAD_BYTES > limits.message_bytes:
            raise InvalidMessage("oversize output", f"item vector of {len(raw)} bytes")
        return raw

    async def _bad(self, rec, exc: BaseException) -> None:
        if not isinstance(exc, InvalidMessage):
            self.runtime.breaker.failed(exc)  # infrastructure re-raises: the worker stops
        self.runtime.bad_items += 1
        logger.info("items %d@%d rejected: %s", rec.partition, rec.offset, reason_of(exc))
        await self.dead_letter(rec, reason_of(exc))
