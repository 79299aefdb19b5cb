"""Reading a table a slice at a time, in (partition, key) order from a cursor, so a walk over
every user can stop after N keys and resume later without holding an iterator (or the whole
table) between slices.

faust's Table only iterates whole; its rocksdb store keeps one RocksDB per partition, and a
RocksDB seeks to a key. The scan reads those databases directly (this module is the one place
that knows faust's store internals) and falls back to sorting the keys of a plain mapping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from faust.types import TP

Cursor = tuple[int, bytes]  # (partition, key) of the last entry read
MAPPING_PARTITION = -1  # what a plain mapping's entries say (it has no partitions)


@dataclass(frozen=True)
class Entry:
    """One key of the table as a slice read it."""

    partition: int  # the partition's local database it lives in
    key: bytes
    value: bytes


class TableScan(Protocol):
    """Slices of a table in (partition, key) order."""

    def read(self, after: Cursor | None, n: int) -> list[Entry]:
        """Up to n entries after `after` (None: from the first); fewer means the end."""
        ...

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The key's value in that partition now (None: gone)."""
        ...


class RocksTableScan:
    """A faust table on the rocksdb store (rocksdict driver): its active partitions only (a
    standby partition's users belong to another worker)."""

    def __init__(self, table) -> None:
        self._store = table.data

    def _databases(self) -> list[tuple[int, object]]:
        store = self._store
        actives = store.app.assignor.assigned_actives()
        topic = store.table.changelog_topic_name
        return sorted(((p, db) for p, db in store._dbs.items()
                       if TP(topic, p) in actives or store.table.is_global), key=lambda pd: pd[0])

    def read(self, after: Cursor | None, n: int) -> list[Entry]:
        out: list[Entry] = []
        for partition, db in self._databases():
            if after is not None and partition < after[0]:
                continue
            start = after[1] if after is not None and partition == after[0] else None
            out += [Entry(partition, k, v) for k, v in islice(self._items(db, start), n - len(out))]
            if len(out) == n:
                break
        return out

    def _items(self, db, after_key: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for key, value in db.items(from_key=after_key):
            if key == self._store.offset_key or key == after_key:
                continue
            yield bytes(key), bytes(value)

    def get(self, partition: int, key: bytes) -> bytes | None:
        db = self._store._dbs.get(partition)
        value = None if db is None else db.get(key)
        return None if value is None else bytes(value)


class MappingScan:
    """A plain mapping (unit tests, faust's memory store): its keys sorted at each slice, O(n)
    per slice; fine for the sizes those hold."""

    def __init__(self, mapping: Mapping[bytes, bytes]) -> None:
        self._mapping = mapping

    def read(self, after: Cursor | None, n: int) -> list[Entry]:
        keys = sorted(k for k in self._mapping.keys() if after is None or k > after[1])[:n]
        return [Entry(MAPPING_PARTITION, k, bytes(self._mapping[k])) for k in keys]

    def get(self, partition: int, key: bytes) -> bytes | None:
        value = self._mapping.get(key)
        return None if value is None else bytes(value)


def scan_of(table) -> TableScan:
    """The scan that fits the table: its RocksDBs when faust keeps it in rocksdb (rocksdict)."""
    store = getattr(table, "data", None)
    if getattr(store, "use_rocksdict", False) and hasattr(store, "_dbs"):
        return RocksTableScan(table)
    return MappingScan(table)
