"""Typed stores over any KVStore: UserStateStore (with expiry) and ItemStore (with offsets)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path

from .base import KVStore
from .config import ExpiryConfig
from .expiry import LastSeenIndex, expire_users
from .item_record import ItemRecord, decode_item_record, encode_item_record
from .memory_backend import MemoryKV
from .user_state import UserState, decode_user_state, encode_user_state

logger = logging.getLogger(__name__)

_USER = b"u/"
_ITEM = b"i/"
_OFFSETS = b"o/offsets"


def _open_kv(path: str | Path | None) -> KVStore:
    if path is None:
        return MemoryKV()
    from .rocksdict_backend import RocksDictKV  # only loaded when a disk store is asked for

    return RocksDictKV(path)


class UserStateStore:
    """User states keyed by user id, plus a last-seen index so expiry never decodes states."""

    def __init__(self, kv: KVStore, expiry: ExpiryConfig | None = None) -> None:
        self.kv = kv
        self.expiry = expiry or ExpiryConfig()
        self._index = LastSeenIndex(kv)

    @classmethod
    def open(cls, path: str | Path | None, expiry: ExpiryConfig | None = None) -> UserStateStore:
        """A RocksDB-backed store at path (None: in memory)."""
        return cls(_open_kv(path), expiry)

    def get(self, user_id: str) -> UserState | None:
        raw = self.kv.get(_USER + user_id.encode("utf-8"))
        return None if raw is None else decode_user_state(raw)

    def put(self, state: UserState) -> None:
        puts, deletes = self._index.touch_ops(state.user_id, state.last_seen)
        puts.append((_USER + state.user_id.encode("utf-8"), encode_user_state(state)))
        self.kv.write_batch(puts, deletes)

    def delete(self, user_id: str) -> None:
        _, deletes = self._index.forget_ops(user_id)
        self.kv.write_batch([], deletes + [_USER + user_id.encode("utf-8")])

    def __contains__(self, user_id: str) -> bool:
        return self.kv.get(_USER + user_id.encode("utf-8")) is not None

    def user_ids(self) -> Iterator[str]:
        for key, _ in self.kv.iterate(_USER):
            yield key[len(_USER) :].decode("utf-8")

    def iterate(self) -> Iterator[UserState]:
        for _, raw in self.kv.iterate(_USER):
            yield decode_user_state(raw)

    def last_seen(self, user_id: str) -> float | None:
        return self._index.last_seen(user_id)

    def expire(self, now: float) -> int:
        """Drop users last seen before now - ttl (event time); return how many were dropped."""
        stale = self._index.older_than(now - self.expiry.ttl_seconds, self.expiry.max_per_call)
        count = expire_users(self._index, self.kv, ((u, _USER + u.encode("utf-8")) for u in stale))
        if count:
            logger.info(
                "expired %d users last seen before %.0f", count, now - self.expiry.ttl_seconds
            )
        return count

    def flush(self) -> None:
        self.kv.flush()

    def close(self) -> None:
        self.kv.close()


class ItemStore:
    """Item records keyed by item id, plus the items-topic offsets they reflect."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    @classmethod
    def open(cls, path: str | Path | None) -> ItemStore:
        """A RocksDB-backed store at path (None: in memory)."""
        return cls(_open_kv(path))

    def get(self, item_id: str) -> ItemRecord | None:
        raw = self.kv.get(_ITEM + item_id.encode("utf-8"))
        return None if raw is None else decode_item_record(raw)

    def put(self, item: ItemRecord, offsets: dict[int, int] | None = None) -> None:
        """Store item; with offsets, record them in the same atomic write."""
        puts = [(_ITEM + item.item_id.encode("utf-8"), encode_item_record(item))]
        self.kv.write_batch(puts + self._offset_puts(offsets))

    def delete(self, item_id: str, offsets: dict[int, int] | None = None) -> None:
        self.kv.write_batch(self._offset_puts(offsets), [_ITEM + item_id.encode("utf-8")])

    def __contains__(self, item_id: str) -> bool:
        return self.kv.get(_ITEM + item_id.encode("utf-8")) is not None

    def iterate(self) -> Iterator[ItemRecord]:
        for _, raw in self.kv.iterate(_ITEM):
            yield decode_item_record(raw)

    def offsets(self) -> dict[int, int]:
        """Partition -> next offset to consume, as last recorded."""
        raw = self.kv.get(_OFFSETS) or b""
        pairs = struct.iter_unpack("<iq", raw)
        return {int(p): int(o) for p, o in pairs}

    def commit_offsets(self, offsets: dict[int, int]) -> None:
        self.kv.write_batch(self._offset_puts(offsets))

    def _offset_puts(self, offsets: dict[int, int] | None) -> list[tuple[bytes, bytes]]:
        if offsets is None:
            return []
        merged = {**self.offsets(), **offsets}
        raw = b"".join(struct.pack("<iq", p, o) for p, o in sorted(merged.items()))
        return [(_OFFSETS, raw)]

    def flush(self) -> None:
        self.kv.flush()

    def close(self) -> None:
        self.kv.close()
