"""Bounded least-recently-used cache of recomputable arrays (session token states [T, d])."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import KVStore
from .binary import Writer, open_frame
from .config import CacheConfig, RocksMemory
from .errors import StateCodecError
from .memory_backend import MemoryKV

logger = logging.getLogger(__name__)

_VALUE = b"v/"
_META = b"m/lru"
_ARRAY_MAGIC, _META_MAGIC, _FORMAT = b"TRCA", b"TRCM", 1


@dataclass(frozen=True)
class CacheStats:
    """Counters since open; bytes and entries are current."""

    hits: int
    misses: int
    evictions: int
    rejected: int
    bytes: int
    entries: int
    max_bytes: int


class BoundedCache:
    """Arrays by string key in any KVStore; total key+value bytes never exceed max_bytes.

    Recency lives in memory (a get must not cost a write) and is saved by flush()/close().
    """

    def __init__(self, kv: KVStore, config: CacheConfig | None = None) -> None:
        self.kv = kv
        self.config = config or CacheConfig()
        self._lru: OrderedDict[bytes, int] = (
            OrderedDict()
        )  # value key -> stored bytes, oldest first
        self.bytes = 0
        self.hits = self.misses = self.evictions = self.rejected = 0
        self._load()

    @classmethod
    def open(cls, path: str | Path, config: CacheConfig | None = None,
             memory: RocksMemory | None = None) -> BoundedCache:
        """A RocksDB-backed cache at path; what fits the bound survives reopening."""
        from .rocksdict_backend import RocksDictKV

        return cls(RocksDictKV(path, memory), config)

    @classmethod
    def in_memory(cls, config: CacheConfig | None = None) -> BoundedCache:
        return cls(MemoryKV(), config)

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or None (a miss: the caller recomputes and puts)."""
        vkey = _VALUE + key.encode("utf-8")
        raw = self.kv.get(vkey) if vkey in self._lru else None
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        self._lru.move_to_end(vkey)
        return _decode(raw)

    def put(self, key: str, array: np.ndarray) -> bool:
        """Cache array under key, evicting the least recently used; False if it can never fit."""
        vkey = _VALUE + key.encode("utf-8")
        raw = _encode(array)
        size = len(vkey) + len(raw)
        self.delete(key)
        if size > self.config.max_bytes:
            self.rejected += 1
            return False
        self._evict_until(self.config.max_bytes - size)
        self.kv.put(vkey, raw)
        self._lru[vkey] = size
        self.bytes += size
        return True

    def delete(self, key: str) -> None:
        vkey = _VALUE + key.encode("utf-8")
        size = self._lru.pop(vkey, None)
        if size is not None:
            self.kv.delete(vkey)
            self.bytes -= size

    def __contains__(self, key: str) -> bool:
        return _VALUE + key.encode("utf-8") in self._lru

    def __len__(self) -> int:
        return len(self._lru)

    def stats(self) -> CacheStats:
        return CacheStats(
            self.hits,
            self.misses,
            self.evictions,
            self.rejected,
            self.bytes,
            len(self),
            self.config.max_bytes,
        )

    def _evict_until(self, budget: int) -> None:
        victims = []
        while self.bytes > budget and self._lru:
            vkey, size = self._lru.popitem(last=False)
            victims.append(vkey)
            self.bytes -= size
        if victims:
            self.evictions += len(victims)
            self.kv.write_batch([], victims)

    def flush(self) -> None:
        """Save recency order and make writes durable."""
        w = Writer()
        w.texts([k.decode("utf-8") for k in self._lru])
        self.kv.put(_META, w.frame(_META_MAGIC, _FORMAT))
        self.kv.flush()

    def close(self) -> None:
        self.flush()
        self.kv.close()

    def _load(self) -> None:
        """Rebuild sizes from the stored values; order from saved meta, unknown keys oldest."""
        sizes = {k: len(k) + len(v) for k, v in self.kv.iterate(_VALUE)}
        order = [k for k in self._saved_order() if k in sizes]
        known = set(order)
        for vkey in [k for k in sizes if k not in known] + order:
            self._lru[vkey] = sizes[vkey]
        self.bytes = sum(sizes.values())
        self._evict_until(self.config.max_bytes)  # the bound may be smaller than last time
        if self._lru:
            logger.info("cache reopened with %d entries, %d bytes", len(self._lru), self.bytes)

    def _saved_order(self) -> list[bytes]:
        raw = self.kv.get(_META)
        if raw is None:
            return []
        try:
            _, r = open_frame(raw, _META_MAGIC, {_FORMAT}, "cache meta")
            return [k.encode("utf-8") for k in r.texts()]
        except StateCodecError:
            logger.warning("cache recency metadata unreadable; treating all entries as old")
            return []


def _encode(array: np.ndarray) -> bytes:
    w = Writer()
    w.array(array)
    return w.frame(_ARRAY_MAGIC, _FORMAT)


def _decode(raw: bytes) -> np.ndarray:
    _, r = open_frame(raw, _ARRAY_MAGIC, {_FORMAT}, "cached array")
    array = r.array(None, None)
    r.finish()
    return array
