"""Collisionless ID memory (Monolith): an exact-key embedding table with Adagrad slots.

Every id gets its own row, keyed by the id's bytes in a KVStore (no hashing into a fixed array,
so two ids never share a row). A row is admitted after `min_count` occurrences (count-min
FrequencyFilter), expires after `ttl_s` of event time without one, and is cached decoded in a
bounded LRU whose dirty rows are written back on eviction (in batches of up to
min(cache_rows, 1024)) and on flush(). Numpy in, numpy out; single-threaded.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import numpy as np

from .base import KVStore
from .config import IdMemoryConfig
from .errors import StateCodecError
from .frequency import FrequencyFilter
from .held_versions import HeldVersions
from .id_row import (
    MAX_DIM,
    IdRow,
    check_id,
    check_row,
    check_table,
    decode_row,
    encode_row,
    initial_row,
    read_last_seen,
    read_version,
)
from .id_snapshot import SnapshotHeader, read_snapshot, write_snapshot
from .row_batch import RowBatch

logger = logging.getLogger(__name__)

_PREFIX = b"idm/"
_PENDING_ROWS = 1024  # at most this many evicted dirty rows wait to be written in one batch
_JOURNAL_ROWS = 65_536  # ids cached between a write_ahead and its put_batch noted at most
_F32_MAX = np.finfo(np.float32).max


def _check_config(config: IdMemoryConfig) -> None:
    if not 0 < config.dim <= MAX_DIM:
        raise ValueError(f"IdMemoryConfig.dim must be in 1..{MAX_DIM}")
    if config.min_count < 1 or config.cache_rows < 1 or config.ttl_s < 0:
        raise ValueError("IdMemoryConfig: min_count and cache_rows >= 1, ttl_s >= 0")
    optimizer = (config.lr, config.eps, config.initial_accumulator, config.init_scale)
    if not (all(map(math.isfinite, optimizer)) and config.lr > 0 and min(optimizer) >= 0):
        raise ValueError("IdMemoryConfig: finite lr > 0, eps, initial_accumulator, init_scale >= 0")


def _per_id(values: float | Sequence[float] | np.ndarray, n: int, what: str) -> np.ndarray:
    """A scalar or (n,) event times as a finite float64 (n,) array."""
    a = np.asarray(values, np.float64)
    a = np.full(n, float(a)) if a.ndim == 0 else a
    if a.shape != (n,) or not np.isfinite(a).all():
        raise ValueError(f"{what}: expected a finite scalar or ({n},) array, got {a.shape}")
    return a


def sum_duplicates(
    ids: list[str], grads: np.ndarray, ts: np.ndarray | None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]:
    """Distinct ids in first-seen order, their summed gradients, counts and latest times."""
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(i, len(index)) for i in ids), np.int64, len(ids))
    if len(index) == len(ids):  # the common case; np.add.at is slow on thousands of rows
        summed = grads.astype(np.float32, copy=True)
    else:
        # sum each id's entries in float64 (no float32 overflow to inf), in their original order:
        # first occurrences, then the (few) repeats added on
        _, first = np.unique(inverse, return_index=True)
        repeat = np.ones(len(ids), bool)
        repeat[first] = False
        summed = grads[first].astype(np.float64)
        # through the flat view: numpy's add.at is several times faster on one axis (same sums)
        width = summed.shape[1]
        at = (inverse[repeat][:, None] * width + np.arange(width)).ravel()
        np.add.at(summed.reshape(-1), at, grads[repeat].astype(np.float64).ravel())
        summed = np.clip(summed, -_F32_MAX, _F32_MAX).astype(np.float32)
    counts = np.bincount(inverse, minlength=len(index))
    latest = None
    if ts is not None:
        latest = np.full(len(index), -np.inf)
        np.maximum.at(latest, inverse, ts)
    return list(index), summed, counts, latest


def adagrad_step(vectors: np.ndarray, accum: np.ndarray, g: np.ndarray, lr: float, eps: float,
                 squares: np.ndarray | None = None) -> None:
    """In place, row-wise: accum += g*g (saturating); vectors -= lr * g / (sqrt(accum) + eps).
    squares: added instead of g*g where g sums n uses' gradients (their squares summed), so the
    accumulators grow as n steps one by one would make them."""
    with np.errstate(over="ignore"):  # saturate: an infinite accumulator could not be stored
        np.minimum(accum + (g * g if squares is None else squares), _F32_MAX, out=accum)
    # |step| <= lr (sqrt(n) lr with the squares of n uses: n accum >= g*g), so the vector stays finite
    vectors -= lr * g / (np.sqrt(accum) + eps)


class _Untracked(dict):
    """The touched-ids set of a memory that does not track them: every write is dropped."""

    def __setitem__(self, key, value) -> None:
        pass

    def update(self, *args, **kwargs) -> None:
        pass


@dataclass(frozen=True)
class VersionsAhead:
    """Stored versions read ahead of a put_batch (IdMemory.versions_ahead), for these ids, as of
    the memory's count of version changes."""

    ids: list[str]
    stored: np.ndarray  # (N,) uint64
    absent: np.ndarray  # (N,) bool
    changed: int
    written: bool = False  # put_batch's KV write was done ahead (IdMemory.write_ahead); ids distinct
    # write_ahead's: the new rows, as IdRows of their own, of the ids cached just after its write
    # (put_batch swaps them in rather than copying into the cached ones under its caller's lock)
    rows: dict[str, IdRow] | None = None
    slots: np.ndarray | None = None  # the ids' slots in the versions held (HeldVersions.slots)


class IdMemory:
    """Rows of one table ("item") in a KVStore, under the keys b"idm/<table>/<id utf-8>".

    `version` is the sync version stamped on every row this memory creates or updates (the
    trainer raises it after each publish); on a replica, put_rows raises it to the newest
    version applied. It and `meta` (opaque bytes, e.g. the trainer's offsets) go in snapshots.
    """

    def __init__(
        self, kv: KVStore, config: IdMemoryConfig | None = None, table: str = "item"
    ) -> None:
        self.config = config or IdMemoryConfig()
        _check_config(self.config)
        self.kv, self.table = kv, table
        self._prefix = _PREFIX + check_table(table) + b"/"
        freq = replace(self.config.frequency, min_count=self.config.min_count)
        self._filter = FrequencyFilter(freq)
        self._cache: OrderedDict[str, IdRow] = OrderedDict()  # LRU, most recent last
        self._dirty: set[str] = set()  # cached rows newer than the KV
        self._pending: dict[str, IdRow] = {}  # evicted dirty rows not yet written
        self._pending_limit = min(self.config.cache_rows, _PENDING_ROWS)
        # ids cached since a write_ahead began (None: none pending; a read begun before its write
        # may cache the row it replaced), and the rows its put_batch swapped out, freed off the lock
        self._journal: list[str] | None = None
        self._retired: list[IdRow | None] = []  # (None: an id evicted before the swap)
        # ordered set for drain_touched (a sink that keeps nothing where no one drains it)
        self._touched: dict[str, None] = {} if self.config.track_touched else _Untracked()
        # id -> version of every row (live: a held row's, else the KV's), when config.versions_held
        self._versions = self._read_versions() if self.config.versions_held else None
        self._versions_changed = 0  # counts changes of _versions: versions read ahead hold while it does
        self._count = sum(1 for _ in kv.iterate(self._prefix)) if self._versions is None else len(self._versions)
        self._version, self.meta = 0, b""
        self.ignored_gradients = 0  # gradient rows dropped because their id had no row
        self.stale_rows_ignored = 0  # put_rows rows older than the stored version

    @property
    def version(self) -> int:
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        if not 0 <= int(value) < 2**64:
            raise ValueError(f"version {value} is not in [0, 2**64)")
        self._version = int(value)

    # ---------------------------------------------------------------- reads
    def __len__(self) -> int:
        return self._count

    def __contains__(self, item_id: str) -> bool:
        return self._exists(check_id(item_id).decode("utf-8"))

    def ids(self) -> list[str]:
        """Every id with a row, in ascending UTF-8 byte order."""
        self._write_back()
        n = len(self._prefix)
        return [k[n:].decode("utf-8") for k, _ in self.kv.iterate(self._prefix)]

    def occurrences(self, item_id: str) -> int:
        """Occurrences of item_id counted by the frequency filter (never under the truth)."""
        return self._filter.count(item_id)

    def occurrence_shares(self, ids: Sequence[str]) -> np.ndarray:
        """(N,) float64: each id's share of the occurrences observed (count-min counts, at least
        1, over the filter's weight; at most 1), e.g. a popularity estimate for a sampler."""
        counts = np.maximum(self._filter.counts(list(ids)), 1).astype(np.float64)
        return np.minimum(counts / max(self._filter.weight(), 1.0), 1.0)

    def lookup(self, ids: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors (N, dim) float32, present (N,) bool); zero vectors where an id has no row."""
        ids = self._check_ids(ids)
        vectors = np.zeros((len(ids), self.config.dim), np.float32)
        present = np.zeros(len(ids), bool)
        for i, item_id in enumerate(ids):
            row = self._get(item_id)
            if row is not None:
                vectors[i], present[i] = row.vector, True
        return vectors, present

    def get_row(self, item_id: str) -> IdRow | None:
        """A copy of item_id's row (vector, slots, bookkeeping), or None."""
        row = self._get(check_id(item_id).decode("utf-8"))
        return None if row is None else row.copy()

    # ---------------------------------------------------------------- trainer side
    def observe(self, ids: Iterable[str], ts: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Count one occurrence per entry at event time ts (scalar or per id).

        Admits a row once an id's count reaches min_count; refreshes last_seen (the max of the
        old value and ts) of rows that exist. Returns (N,) bool: which entries now have a row.
        A refresh of last_seen alone is persisted but not reported by drain_touched.
        """
        ids = self._check_ids(ids)
        times = _per_id(ts, len(ids), "observe ts")
        out = np.zeros(len(ids), bool)
        for i, (item_id, t) in enumerate(zip(ids, times.tolist(), strict=True)):
            seen = self._filter.observe(item_id)
            row = self._get(item_id)
            if row is None and seen >= self.config.min_count:
                self._create(item_id, t)
            elif row is not None and t > row.last_seen:
                row.last_seen = t
                self._mark(item_id, touched=False)
            out[i] = row is not None or seen >= self.config.min_count
        return out

    def apply_gradients(
        self,
        ids: Iterable[str],
        grads: np.ndarray,
        ts: float | Sequence[float] | np.ndarray | None = None,
    ) -> int:
        """One Adagrad step per distinct id with a row; returns how many entries were ignored.

        Gradients of an id repeated within the call are summed first (one step, as sparse
        optimizers do): accum += g*g; vector -= lr * g / (sqrt(accum) + eps). `updates` counts
        steps. Entries whose id has no row are ignored and counted in ignored_gradients. With ts,
        last_seen is refreshed too.
        """
        ids = self._check_ids(ids)
        grads = np.asarray(grads, np.float32)
        if grads.shape != (len(ids), self.config.dim) or not np.isfinite(grads).all():
            raise ValueError(f"grads: expected finite ({len(ids)}, {self.config.dim}) values")
        times = None if ts is None else _per_id(ts, len(ids), "apply_gradients ts")
        unique, summed, counts, latest = sum_duplicates(ids, grads, times)
        ignored = 0
        # chunks no larger than the cache: a row fetched in a chunk stays cached until marked
        for start in range(0, len(unique), self.config.cache_rows):
            ignored += self._step_chunk(unique, summed, counts, latest, start)
        self.ignored_gradients += ignored
        return ignored

    def _step_chunk(self, unique: list[str], summed: np.ndarray, counts: np.ndarray,
                    latest: np.ndarray | None, start: int) -> int:
        """apply_gradients over unique[start:start + cache_rows]; returns entries ignored."""
        span = range(start, min(start + self.config.cache_rows, len(unique)))
        rows = {j: self._get(unique[j]) for j in span}
        have = [j for j, row in rows.items() if row is not None]
        if have:
            self._adagrad([rows[j] for j in have], summed[have])
        for j in have:
            if latest is not None:
                rows[j].last_seen = max(rows[j].last_seen, float(latest[j]))
            self._mark(unique[j])
            self._stamp(unique[j], self.version)
        return int(counts[span.start:span.stop].sum() - counts[have].sum())

    def _adagrad(self, rows: list[IdRow], g: np.ndarray) -> None:
        """One step on each row with its gradient g[k], in one vectorized pass."""
        vectors, accum = np.stack([row.vector for row in rows]), np.stack([row.accum for row in rows])
        adagrad_step(vectors, accum, g, self.config.lr, self.config.eps)
        for k, row in enumerate(rows):
            row.accum[...], row.vector[...] = accum[k], vectors[k]
            row.updates += 1
            row.version = self.version

    def write_steps(self, ids: Sequence[str], vectors: np.ndarray, accum: np.ndarray,
                    steps: np.ndarray) -> None:
        """Store rows stepped elsewhere (store/row_block.py): new vector and slot values, steps[k]
        more updates; each is stamped with the current version and reported as touched."""
        for k, item_id in enumerate(ids):
            row = self._get(item_id)
            if row is None:
                raise KeyError(f"id memory {self.table}: no row {item_id!r} to write steps to")
            row.vector[...], row.accum[...] = vectors[k], accum[k]
            row.updates += int(steps[k])
            row.version = self.version
            self._mark(item_id)
            self._stamp(item_id, self.version)

    def drain_touched(self) -> list[str]:
        """Ids created, updated, put or deleted since the last call (the rows to publish; none
        without config.track_touched)."""
        out = list(self._touched)
        self._touched.clear()
        return out

    def expire(self, now_ts: float) -> list[str]:
        """Delete rows whose last_seen < now_ts - ttl_s (event time); returns their ids, sorted.

        They are reported by drain_touched too (a tombstone on the parameters topic).
        """
        if self.config.ttl_s <= 0:
            return []
        cutoff = float(now_ts) - self.config.ttl_s
        stale = sorted(self._stale_ids(cutoff))
        self._remove(stale)
        if stale:
            logger.info("id memory %s: expired %d rows", self.table, len(stale))
        return stale

    def _stale_ids(self, cutoff: float) -> list[str]:
        held = chain(self._cache.items(), self._pending.items())
        out = [item_id for item_id, row in held if row.last_seen < cutoff]
        n = len(self._prefix)
        for key, raw in self.kv.iterate(self._prefix):
            item_id = key[n:].decode("utf-8")
            if item_id in self._cache or item_id in self._pending:
                continue  # the held copy is newer and was judged above
            if read_last_seen(raw) < cutoff:
                out.append(item_id)
        return out

    # ---------------------------------------------------------------- replica side
    def put_rows(self, ids: Iterable[str], rows: Iterable[IdRow]) -> np.ndarray:
        """Store rows (copies) as given, e.g. applied from the parameters topic.

        A row whose version is lower than the stored row's is ignored (counted in
        stale_rows_ignored): a late or replayed publish never rolls a row back. An equal
        version is applied, so a redelivered sync is harmless. Returns (N,) bool: applied.
        """
        ids = self._check_ids(ids)
        rows = list(rows)
        if len(rows) != len(ids):
            raise ValueError(f"put_rows: {len(ids)} ids but {len(rows)} rows")
        applied = np.zeros(len(ids), bool)
        for i, (item_id, row) in enumerate(zip(ids, rows, strict=True)):
            self._check_row(row)
            old = self._get(item_id)
            if old is not None and row.version < old.version:
                self.stale_rows_ignored += 1
                continue
            self._count += old is None
            self._remember(item_id, row.copy(), dirty=True)
            self._touched[item_id] = None
            self._stamp(item_id, row.version)
            self.version = max(self.version, int(row.version))
            applied[i] = True
        return applied

    def versions_ahead(self, ids: list[str]) -> VersionsAhead | None:
        """The stored versions of ids from the versions held (config.versions_held; None
        otherwise), read ahead of a put_batch, which uses them while no version changed since."""
        if self._versions is None:
            return None
        changed = self._versions_changed
        slots = self._versions.slots(ids)
        stored, absent = self._versions.read(slots)
        return VersionsAhead(ids, stored, absent, changed, slots=slots)

    def write_ahead(self, batch: RowBatch, ahead: VersionsAhead | None) -> VersionsAhead | None:
        """put_batch's KV write for these rows done now, ahead of it (a worker: off the engine
        lock), for a caller that is this memory's one writer until that put_batch and where no
        row waits to be written back (a write-back beside this write could put an older row over
        it). Returns ahead marked written, or ahead as given where that cannot hold (put_batch
        then writes); the rows go live at put_batch, a read of one not held meanwhile may see it.
        The new rows of the ids cached after the write are built here too (put_batch swaps them in)."""
        self._retired = []  # the last put_batch's old rows, freed here rather than under its lock
        if (ahead is None or ahead.ids is not batch.ids or ahead.changed != self._versions_changed
                or self._dirty or self._pending or len(set(batch.ids)) != len(batch.ids)):
            return ahead
        put = np.flatnonzero(ahead.absent | (batch.versions >= ahead.stored)).tolist()
        self._journal = []  # before the write: a read that ends after it is noted
        if not put:
            return replace(ahead, written=True, rows={})
        self._write_rows(batch, put)
        return replace(ahead, written=True, rows=self._new_rows(batch, put))

    def _new_rows(self, batch: RowBatch, put: list[int]) -> dict[str, IdRow]:
        """IdRows of their own of batch's rows at put whose ids are cached now (read after the
        write: an id cached later, maybe from a read begun before it, put_batch copies into)."""
        ids = batch.ids
        held = self._cache.keys() & [ids[k] for k in put]
        at = [k for k in put if ids[k] in held]
        if not at:
            return {}
        vectors, zero = batch.vectors, np.zeros(self.config.dim, np.float32)
        scalars = zip(batch.last_seen[at].tolist(), batch.updates[at].tolist(), batch.versions[at].tolist(),
                      strict=True)
        # arrays of their own: a view would keep the whole slice alive while one row is cached
        return {ids[k]: IdRow(vectors[k].copy(), zero.copy() if batch.accum is None else batch.accum[k].copy(),
                              last_seen, updates, version)
                for k, (last_seen, updates, version) in zip(at, scalars, strict=True)}

    def put_batch(self, batch: RowBatch, ahead: VersionsAhead | None = None) -> tuple[np.ndarray, np.ndarray]:
        """put_rows for rows of distinct ids decoded in one pass (store/row_batch.py), in one KV
        write of their encodings as given: held rows are updated in place, the others are not read
        into the cache; the write is durable at the next flush(). The same rule: a row older than
        the stored one is ignored (a stored row too damaged to show its version is replaced).
        ahead: versions_ahead(batch.ids), or write_ahead's. Returns ((N,) bool applied, (N,) bool
        created: applied where no row was stored)."""
        ids = batch.ids
        valid = ahead is not None and ahead.changed == self._versions_changed and ahead.ids is ids
        written = valid and ahead.written  # write_ahead saw the ids distinct
        if not written and len(set(ids)) != len(ids):
            raise ValueError("put_batch: ids must be distinct (split the batch where one repeats)")
        stored, absent = (ahead.stored, ahead.absent) if valid else self._stored_versions(ids)
        fresh = absent | (batch.versions >= stored)
        everyone = bool(fresh.all())
        if not everyone:
            self.stale_rows_ignored += int((~fresh).sum())
        put = list(range(len(ids))) if everyone else np.flatnonzero(fresh).tolist()
        if not put:
            return fresh, absent
        put_ids = ids if everyone else [ids[k] for k in put]
        versions = batch.versions if everyone else batch.versions[put]
        if not written:
            self._write_rows(batch, put)
        if self._pending:
            for item_id in self._pending.keys() & put_ids:  # would write an older row over the KV's
                del self._pending[item_id]
        if written and ahead.rows is not None and not self._dirty:
            self._swap_held(batch, put, put_ids, ahead.rows)
        else:
            self._update_held(batch, put, put_ids)
        self._journal = None
        if self.config.track_touched:
            self._touched.update(dict.fromkeys(put_ids))
        if self._versions is not None:
            slots = ahead.slots if valid else None  # read ahead, off the lock: one scatter here
            slots = self._versions.slots(put_ids) if slots is None else slots if everyone else slots[put]
            self._versions.put(put_ids, slots, versions)
            self._versions_changed += 1
        self._count += int(absent.sum() if everyone else absent[put].sum())
        self.version = max(self.version, int(versions.max()))
        return fresh, absent

    def _write_rows(self, batch: RowBatch, put: list[int]) -> None:
        """The KV write of batch's rows at positions put, their encodings as given."""
        everyone, prefix = len(put) == len(batch.ids), self._prefix
        put_ids = batch.ids if everyone else [batch.ids[k] for k in put]
        # unlogged (durable at flush()): a replica re-applies what a crash lost from the offsets
        # its last flush reflects (streams/worker/id_rows.py flushes before it saves them)
        self.kv.write_batch(zip([prefix + i.encode("utf-8") for i in put_ids],
                                batch.raws if everyone else [batch.raws[k] for k in put], strict=True), logged=False)

    def _swap_held(self, batch: RowBatch, put: list[int], put_ids: list[str], rows: dict[str, IdRow]) -> None:
        """_update_held with write_ahead's rows, swapped in by one update of the cache (those of
        ids evicted since left out); the ids cached since the write began (the journal) and
        without such a row are copied into."""
        cache, journal = self._cache, self._journal
        # (no set difference with the cache's keys: it iterates over the whole cache)
        retired = self._retired = list(map(cache.get, rows))  # freed at the next write_ahead, off the lock
        if not all(retired):  # (not `None in`: that calls IdRow.__eq__ per row, ~0.1 us each warm)
            rows = {i: row for (i, row), old in zip(rows.items(), retired, strict=True) if old is not None}
        cache.update(rows)
        if journal is None:  # the journal overflowed: every held id looked up
            late = (cache.keys() & put_ids) - rows.keys()
        else:
            late = set(journal).intersection(put_ids).difference(rows) if journal else set()
        if late:
            self._update_held(batch, put, put_ids, among=late)

    def _update_held(self, batch: RowBatch, put: list[int], put_ids: list[str], among: set[str] | None = None) -> None:
        """Cached rows become the rows put_batch wrote (clean: the KV has them), in place (their
        arrays overwritten, their place in the LRU order kept); among: of these ids alone (those
        not cached skipped). The held ones are found by one set intersection: at a million rows
        most of a sync is not cached, and a look-up per row cost more than the copies."""
        cache = self._cache
        held = cache.keys() & (put_ids if among is None else among)
        if not held:
            return
        self._dirty.difference_update(held)
        at = [(k, item_id) for k, item_id in zip(put, put_ids, strict=True) if item_id in held]
        rows = np.fromiter((k for k, _ in at), np.int64, len(at))
        vectors, accum = batch.vectors[rows], None if batch.accum is None else batch.accum[rows]
        scalars = zip(batch.last_seen[rows].tolist(), batch.updates[rows].tolist(), batch.versions[rows].tolist(),
                      strict=True)
        for j, ((_, item_id), (last_seen, updates, version)) in enumerate(zip(at, scalars, strict=True)):
            row = cache[item_id]
            row.vector[...] = vectors[j]
            if accum is None:
                row.accum.fill(0.0)
            else:
                row.accum[...] = accum[j]
            row.last_seen, row.updates, row.version = last_seen, updates, version

    def _stored_versions(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """((N,) uint64 versions of the stored rows, (N,) bool absent): from the versions held,
        else the KV read in one call."""
        if self._versions is not None:
            return self._versions.read(self._versions.slots(ids))
        versions, absent = np.zeros(len(ids), np.uint64), np.zeros(len(ids), bool)
        cache, pending = self._cache, self._pending
        held = cache.keys() & ids
        if pending:
            held |= pending.keys() & ids
        unheld = [k for k, i in enumerate(ids) if i not in held] if held else range(len(ids))
        for k, item_id in enumerate(ids if held else ()):
            if item_id in held:
                versions[k] = (cache.get(item_id) or pending[item_id]).version
        raws = self.kv.get_many([self._prefix + ids[k].encode("utf-8") for k in unheld])
        for k, raw in zip(unheld, raws, strict=True):
            if raw is None:
                absent[k] = True
                continue
            try:
                versions[k] = read_version(raw)
            except StateCodecError:
                logger.warning("id memory %s: stored row of %r unreadable, replaced", self.table, ids[k])
        return versions, absent

    def delete(self, ids: Iterable[str]) -> np.ndarray:
        """Remove rows (a tombstone from the parameters topic); returns (N,) bool: existed."""
        ids = self._check_ids(ids)
        existed = np.zeros(len(ids), bool)
        gone: dict[str, None] = {}
        for i, item_id in enumerate(ids):
            if item_id not in gone and self._exists(item_id):
                existed[i] = True
                gone[item_id] = None
        self._remove(list(gone))
        return existed

    # ---------------------------------------------------------------- durability
    def flush(self) -> None:
        """Write every dirty row to the KV in one batch and make it durable."""
        self._write_back()
        self.kv.flush()

    def close(self) -> None:
        """flush(), then close the KV."""
        self.flush()
        self.kv.close()

    def snapshot(self, path: str | Path) -> None:
        """Write the table (rows, slots, filter, version, meta) to one file, atomically.

        Rows are written back to the KV first. See store/id_snapshot.py for the layout.
        """
        header = self.header()
        write_snapshot(Path(path), header, (raw for _, raw in self.kv.iterate(self._prefix)))

    def header(self) -> SnapshotHeader:
        """What a snapshot holds besides the rows (rows written back to the KV first)."""
        self._write_back()
        return SnapshotHeader(self.table, self.config.dim, self._count, self.version, self.meta,
                              self._filter.to_bytes())

    @classmethod
    def reopen(cls, kv: KVStore, header: SnapshotHeader, config: IdMemoryConfig | None = None) -> IdMemory:
        """The memory of a header over a KV that already holds its rows (a checkpoint of the KV
        taken with the header); StateCodecError when the row count does not match."""
        config = config or IdMemoryConfig()
        _check_config(config)
        if header.dim != config.dim:
            raise StateCodecError(f"id memory header: rows have dim {header.dim}, config.dim is {config.dim}")
        self = cls(kv, config, header.table)
        if len(self) != header.rows:
            raise StateCodecError(f"id memory header: {header.rows} rows but the store holds {len(self)}")
        freq = replace(config.frequency, min_count=config.min_count)
        self._filter = FrequencyFilter.from_bytes(header.filter_bytes, freq)
        self.version, self.meta = header.version, header.meta
        return self

    @classmethod
    def restore(
        cls, path: str | Path, kv: KVStore, config: IdMemoryConfig | None = None
    ) -> IdMemory:
        """The memory a snapshot holds, its rows written into kv (replacing that table's rows).

        Raises StateCodecError when the checksum, the format or the dim does not match. Not
        atomic in kv: after a crash during restore, restore again.
        """
        config = config or IdMemoryConfig()
        _check_config(config)
        freq = replace(config.frequency, min_count=config.min_count)
        with read_snapshot(Path(path), config.dim) as (header, records):
            filt = FrequencyFilter.from_bytes(header.filter_bytes, freq)  # before kv changes
            prefix = _PREFIX + check_table(header.table) + b"/"
            kv.write_batch([], [k for k, _ in kv.iterate(prefix)])
            batch: list[tuple[bytes, bytes]] = []
            for item_id, raw in records:
                batch.append((prefix + item_id.encode("utf-8"), raw))
                if len(batch) >= _PENDING_ROWS:
                    kv.write_batch(batch)
                    batch = []
            kv.write_batch(batch)
        self = cls(kv, config, header.table)
        if len(self) != header.rows:
            raise StateCodecError(f"snapshot {path}: {header.rows} rows but {len(self)} ids")
        self._filter, self.version, self.meta = filt, header.version, header.meta
        return self

    # ---------------------------------------------------------------- internals
    def _check_ids(self, ids: Iterable[str]) -> list[str]:
        ids = [ids] if isinstance(ids, str) else list(ids)
        for item_id in ids:
            check_id(item_id)
        return ids

    def _check_row(self, row: IdRow) -> None:
        check_row(row)
        if row.vector.shape != (self.config.dim,):
            raise ValueError(f"row dim {row.vector.shape[0]} != config.dim {self.config.dim}")

    def _key(self, item_id: str) -> bytes:
        return self._prefix + item_id.encode("utf-8")

    def _decode(self, item_id: str, raw: bytes) -> IdRow:
        table, got_id, row = decode_row(raw)
        if (table, got_id) != (self.table, item_id):
            raise StateCodecError(f"key {self._key(item_id)!r} holds the row of {table}/{got_id}")
        if row.vector.shape != (self.config.dim,):
            raise StateCodecError(f"stored row of {item_id!r} has dim {row.vector.shape[0]}, "
                                  f"config.dim is {self.config.dim}")
        return row

    def _get(self, item_id: str) -> IdRow | None:
        """The live row (in the cache, most recent), or None. Mutate it, then _mark it, before
        touching another id: that may evict it."""
        row = self._cache.get(item_id)
        if row is not None:
            self._cache.move_to_end(item_id)
            return row
        row = self._pending.pop(item_id, None)
        if row is not None:
            self._remember(item_id, row, dirty=True)
            return row
        if self._versions is not None and item_id not in self._versions:
            return None  # no row: no KV read
        raw = self.kv.get(self._key(item_id))
        if raw is None:
            return None
        row = self._decode(item_id, raw)
        self._remember(item_id, row, dirty=False)
        return row

    def _exists(self, item_id: str) -> bool:
        if self._versions is not None:
            return item_id in self._versions
        held = item_id in self._cache or item_id in self._pending
        return held or self.kv.get(self._key(item_id)) is not None

    def _create(self, item_id: str, ts: float) -> None:
        row = initial_row(self.config, self.table, item_id, ts)
        row.version = self.version
        self._count += 1
        self._remember(item_id, row, dirty=True)
        self._touched[item_id] = None
        self._stamp(item_id, row.version)

    def _mark(self, item_id: str, touched: bool = True) -> None:
        """item_id's cached row changed (it is in the cache: _get just returned it)."""
        self._dirty.add(item_id)
        if touched:
            self._touched[item_id] = None

    def _stamp(self, item_id: str, version: int) -> None:
        """item_id's row now has this version (held when config.versions_held)."""
        if self._versions is not None:
            self._versions[item_id] = int(version)
            self._versions_changed += 1

    def _read_versions(self) -> HeldVersions:
        """Every stored row's version, read from the KV (a row too damaged to show it: 0, as
        put_batch reads it)."""
        n, versions = len(self._prefix), HeldVersions()
        for key, raw in self.kv.iterate(self._prefix):
            try:
                versions[key[n:].decode("utf-8")] = read_version(raw)
            except StateCodecError:
                versions[key[n:].decode("utf-8")] = 0
        return versions

    def _remember(self, item_id: str, row: IdRow, dirty: bool) -> None:
        self._cache[item_id] = row
        self._cache.move_to_end(item_id)
        if dirty:
            self._dirty.add(item_id)
        journal = self._journal
        if journal is not None:  # a write_ahead is pending: its put_batch checks this id
            journal.append(item_id)
            if len(journal) > _JOURNAL_ROWS:
                self._journal = None  # put_batch then looks every id up
        self._evict_over()

    def _evict_over(self) -> None:
        """Least recently used rows out past cache_rows (dirty ones to be written back)."""
        while len(self._cache) > self.config.cache_rows:
            old_id, old = self._cache.popitem(last=False)
            if old_id in self._dirty:
                self._dirty.remove(old_id)
                self._pending[old_id] = old
        if len(self._pending) >= self._pending_limit:
            self._write_pending()

    def _remove(self, ids: list[str]) -> None:
        for item_id in ids:
            self._cache.pop(item_id, None)
            self._dirty.discard(item_id)
            self._pending.pop(item_id, None)
            self._touched[item_id] = None
            if self._versions is not None:
                self._versions.pop(item_id)
                self._versions_changed += 1
        self._count -= len(ids)
        self.kv.write_batch([], [self._key(i) for i in ids])

    def _write_pending(self) -> None:
        puts = [(self._key(i), encode_row(self.table, i, r)) for i, r in self._pending.items()]
        self.kv.write_batch(puts)
        self._pending.clear()

    def _write_back(self) -> None:
        for item_id in self._dirty:
            self._pending[item_id] = self._cache[item_id]
        self._dirty.clear()
        if self._pending:
            self._write_pending()

