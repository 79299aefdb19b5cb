"""Typed store over any KVStore: ItemStore (item records with the offsets they reflect)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from .base import KVStore
from .config import RocksMemory
from .item_record import ItemRecord, decode_item_record, encode_item_record
from .memory_backend import MemoryKV

_ITEM = b"i/"
_OFFSETS = b"o/offsets"


def _open_kv(path: str | Path | None, memory: RocksMemory | None = None) -> KVStore:
    if path is None:
        return MemoryKV()
    from .rocksdict_backend import RocksDictKV  # only loaded when a disk store is asked for

    return RocksDictKV(path, memory)


class ItemStore:
    """Item records keyed by item id, plus the items-topic offsets they reflect."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    @classmethod
    def open(cls, path: str | Path | None, memory: RocksMemory | None = None) -> ItemStore:
        """A RocksDB-backed store at path within a memory budget (None: in memory)."""
        return cls(_open_kv(path, memory))

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
