"""Last-seen index for Monolith-style expiry: find stale users without decoding their states."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable

from .base import KVStore

logger = logging.getLogger(__name__)

_F64 = struct.Struct(">d")
_U64 = struct.Struct(">Q")
Ops = tuple[list[tuple[bytes, bytes]], list[bytes]]


def sortable_time(ts: float) -> bytes:
    """8 bytes whose byte order equals the numeric order of ts (negatives included)."""
    (bits,) = _U64.unpack(_F64.pack(ts))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return _U64.pack(bits)


class LastSeenIndex:
    """Two keyspaces in one KVStore: by-time (prefix+'t'+time+user) and by-user (prefix+'u'+user)."""

    def __init__(self, kv: KVStore, prefix: bytes = b"x/") -> None:
        self._kv = kv
        self._by_time = prefix + b"t"
        self._by_user = prefix + b"u"

    def last_seen(self, user_id: str) -> float | None:
        raw = self._kv.get(self._by_user + user_id.encode("utf-8"))
        return None if raw is None else _F64.unpack(raw)[0]

    def touch_ops(self, user_id: str, ts: float) -> Ops:
        """Writes that record user_id as last seen at ts (nothing if unchanged)."""
        uid = user_id.encode("utf-8")
        old = self.last_seen(user_id)
        if old == ts:
            return [], []
        deletes = [] if old is None else [self._by_time + sortable_time(old) + uid]
        puts = [
            (self._by_time + sortable_time(ts) + uid, b""),
            (self._by_user + uid, _F64.pack(ts)),
        ]
        return puts, deletes

    def forget_ops(self, user_id: str) -> Ops:
        """Writes that drop user_id from the index."""
        uid = user_id.encode("utf-8")
        old = self.last_seen(user_id)
        if old is None:
            return [], []
        return [], [self._by_time + sortable_time(old) + uid, self._by_user + uid]

    def touch(self, user_id: str, ts: float) -> None:
        self._kv.write_batch(*self.touch_ops(user_id, ts))

    def forget(self, user_id: str) -> None:
        self._kv.write_batch(*self.forget_ops(user_id))

    def older_than(self, cutoff: float, limit: int) -> list[str]:
        """Up to `limit` user ids last seen strictly before cutoff, oldest first."""
        stop = self._by_time + sortable_time(cutoff)
        found: list[str] = []
        for key, _ in self._kv.iterate(self._by_time):
            # the scan is ordered by time, so it stops at the first fresh user
            if key[: len(stop)] >= stop or len(found) >= limit:
                break
            found.append(key[len(stop) :].decode("utf-8"))
        return found


def expire_users(index: LastSeenIndex, kv: KVStore, keys: Iterable[tuple[str, bytes]]) -> int:
    """Delete each (user_id, state key) and its index entries in one batch; return the count."""
    deletes: list[bytes] = []
    count = 0
    for user_id, state_key in keys:
        deletes.extend(index.forget_ops(user_id)[1])
        deletes.append(state_key)
        count += 1
    kv.write_batch([], deletes)
    return count
