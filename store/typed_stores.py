"""Typed store over any KVStore: ItemStore (item records with the offsets they reflect)."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from cachetools import LRUCache

from .base import KVStore
from .config import ITEM_CACHE_BYTES, RocksMemory
from .item_record import ItemRecord, decode_item_record, encode_item_record
from .memory_backend import MemoryKV

_ITEM = b"i/"
_OFFSETS = b"o/vector-offsets"  # item-vectors partition -> next offset
# the `items`-topic positions of stores written before item-vectors: they mean nothing to it
_LEGACY_OFFSETS = b"o/offsets"


def _open_kv(path: str | Path | None, memory: RocksMemory | None = None) -> KVStore:
    if path is None:
        return MemoryKV()
    from .rocksdict_backend import RocksDictKV  # only loaded when a disk store is asked for

    return RocksDictKV(path, memory)


def _record_bytes(item: ItemRecord) -> int:
    return item.cpe.nbytes + item.vector.nbytes + len(item.text) + len(item.category) + 256


class ItemStore:
    """Item records keyed by item id, plus the item-vectors offsets they reflect.

    Decoded records are kept in a bounded LRU (a recommendation reads ~150 records: decoding
    them was a third of the worker's time); their arrays are read-only, as they are shared."""

    def __init__(self, kv: KVStore, cache_bytes: int = ITEM_CACHE_BYTES) -> None:
        self.kv = kv
        self._cache: LRUCache = LRUCache(maxsize=max(cache_bytes, 1), getsizeof=_record_bytes)
        self._lock = threading.Lock()  # the worker's loop thread checks membership during a batch

    @classmethod
    def open(cls, path: str | Path | None, memory: RocksMemory | None = None,
             cache_bytes: int = ITEM_CACHE_BYTES) -> ItemStore:
        """A RocksDB-backed store at path within a memory budget (None: in memory)."""
        return cls(_open_kv(path, memory), cache_bytes)

    def get(self, item_id: str) -> ItemRecord | None:
        with self._lock:  # read and cache under one lock, so a concurrent put cannot be undone
            item = self._cache.get(item_id)
            if item is not None:
                return item
            raw = self.kv.get(_ITEM + item_id.encode("utf-8"))
            if raw is None:
                return None
            item = decode_item_record(raw)
            item.cpe.setflags(write=False)
            item.vector.setflags(write=False)
            if _record_bytes(item) <= self._cache.maxsize:
                self._cache[item_id] = item
            return item

    def put(self, item: ItemRecord, offsets: dict[int, int] | None = None) -> None:
        """Store item; with offsets, record them in the same atomic write."""
        self.put_many([item], offsets)

    def put_many(self, items: Sequence[ItemRecord], offsets: dict[int, int] | None = None,
                 encoded: Sequence[bytes | None] | None = None) -> None:
        """Store items and, with offsets, record them, in one atomic write (one write per item
        cost more than encoding it: a catalogue doubling applies a whole catalogue). encoded[k],
        when given, is encode_item_record(items[k]) already (as item-vectors carry it)."""
        raws = encoded if encoded is not None else [None] * len(items)
        puts = [(_ITEM + item.item_id.encode("utf-8"), raw if raw is not None else encode_item_record(item))
                for item, raw in zip(items, raws, strict=True)]
        with self._lock:
            self.kv.write_batch(puts + self._offset_puts(offsets))
            for item in items:
                self._cache.pop(item.item_id, None)

    def raw(self, item_id: str) -> bytes | None:
        """The item's stored bytes (None: not stored), as put_raw takes them back."""
        return self.kv.get(_ITEM + item_id.encode("utf-8"))

    def put_raw(self, item_id: str, raw: bytes | None) -> None:
        """Put back bytes that raw() returned (None deletes): undoes a write."""
        key = _ITEM + item_id.encode("utf-8")
        with self._lock:
            self.kv.write_batch([] if raw is None else [(key, raw)], [] if raw is not None else [key])
            self._cache.pop(item_id, None)

    def delete(self, item_id: str, offsets: dict[int, int] | None = None) -> None:
        with self._lock:
            self.kv.write_batch(self._offset_puts(offsets), [_ITEM + item_id.encode("utf-8")])
            self._cache.pop(item_id, None)

    def __contains__(self, item_id: str) -> bool:
        return self.get(item_id) is not None

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

    def drop_legacy(self) -> int:
        """A store from before item-vectors (positions in `items`) is emptied, so the replica
        re-reads item-vectors from the start and nothing deleted meanwhile survives; returns
        the records dropped."""
        if self.kv.get(_LEGACY_OFFSETS) is None:
            return 0
        keys = [key for key, _ in self.kv.iterate(_ITEM)]
        with self._lock:
            self.kv.write_batch([], [*keys, _LEGACY_OFFSETS])
            self._cache.clear()
        return len(keys)

    def flush(self) -> None:
        self.kv.flush()

    def close(self) -> None:
        self.kv.close()
