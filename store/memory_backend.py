"""In-memory KVStore backend (tests, ephemeral workers)."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Iterator

from .errors import StoreClosedError

logger = logging.getLogger(__name__)


class MemoryKV:
    """A dict plus a sorted key list, so prefix scans are ordered like RocksDB's."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] | None = {}
        self._keys: list[bytes] = []

    def _live(self) -> dict[bytes, bytes]:
        if self._data is None:
            raise StoreClosedError("memory store is closed")
        return self._data

    def get(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        data = self._live()
        return [data.get(k) for k in keys]

    def put(self, key: bytes, value: bytes) -> None:
        data = self._live()
        if key not in data:
            bisect.insort(self._keys, key)
        data[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        if self._live().pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), logged: bool = True
    ) -> None:
        for key in deletes:
            self.delete(key)
        for key, value in puts:
            self.put(key, value)

    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        data = self._live()
        # snapshot the range so callers may delete while iterating
        lo = bisect.bisect_left(self._keys, prefix)
        for key in list(self._iter_keys(lo, prefix)):
            value = data.get(key)
            if value is not None:
                yield key, value

    def _iter_keys(self, lo: int, prefix: bytes) -> Iterator[bytes]:
        for key in self._keys[lo:]:
            if not key.startswith(prefix):
                return
            yield key

    def flush(self) -> None:
        self._live()

    def close(self) -> None:
        self._data = None
        self._keys = []
