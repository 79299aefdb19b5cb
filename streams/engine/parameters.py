"""Records of the `parameters` topic applied to the ID half (contract: docs/architecture.md).

A record is (key, value): key row_key("item", id), value encode_row("item", id, row), or None
(the trainer expired the row: delete it). A record that does not decode, names another table,
disagrees with its key or has another dim than the ID memory is corrupt: it comes back with the
reason and is not applied; the records around it are. Plain Python, no Kafka.

A row's version must be plausible: at most `ceiling` (the caller's bound: the trainer's head
plus a step) and never above MAX_VERSION (2**53 - 1, exact in JSON for every consumer). Stale
rows are ignored, so without the bound one record at version 2**64 - 1 would pin its row, and
the version every recommendation reports, for good.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from store import IdMemory, IdRow, StateCodecError, VersionsAhead, decode_row, parse_row_key
from store.row_batch import RowBatch, decode_served
from streams.engine.id_half import IdHalf, PreparedRows

logger = logging.getLogger(__name__)

# applied: row stored; stale: older version than the stored row, ignored; deleted: tombstone
# removed a row; absent: tombstone for a row not held (normal on a compacted topic); corrupt
OUTCOMES = ("applied", "stale", "deleted", "absent", "corrupt")
CHANGED = frozenset({"applied", "deleted"})  # outcomes that change what is served
MAX_VERSION = 2**53 - 1  # above it a version is not exact as a JSON number


class CorruptParameter(ValueError):
    """A `parameters` record that must not be applied; str() is the dead letter's reason."""


@dataclass(frozen=True)
class ParamOutcome:
    """What became of one record; `reason` says why a corrupt one was refused."""

    outcome: str  # one of OUTCOMES
    reason: str = ""


_APPLIED, _STALE, _DELETED, _ABSENT = (ParamOutcome(o) for o in ("applied", "stale", "deleted", "absent"))


def decode_parameter(key: bytes | None, value: bytes | None, table: str, dim: int,
                     ceiling: int = MAX_VERSION) -> tuple[str, IdRow | None]:
    """(item id, row; None for a tombstone) of one record, or CorruptParameter."""
    try:
        key_table, item_id = parse_row_key(b"" if key is None else key)
    except StateCodecError as e:
        raise CorruptParameter(f"bad parameter key: {e}") from e
    if key_table != table:
        raise CorruptParameter(f"bad parameter table: {key_table!r}, this worker holds {table!r}")
    if value is None:
        return item_id, None
    try:
        row_table, row_id, row = decode_row(bytes(value))
    except StateCodecError as e:
        raise CorruptParameter(f"bad parameter row: {e}") from e
    if (row_table, row_id) != (key_table, item_id):
        raise CorruptParameter(f"parameter key mismatch: key {key_table}/{item_id!r} holds the "
                               f"row of {row_table}/{row_id!r}")
    if row.vector.shape != (dim,):
        raise CorruptParameter(f"parameter dim mismatch: row dim {row.vector.shape[0]}, "
                               f"ID memory dim {dim}")
    if row.version > min(ceiling, MAX_VERSION):
        raise CorruptParameter(f"implausible version: {row.version} > {min(ceiling, MAX_VERSION)} "
                               "(the trainer's head plus param_version_step)")
    return item_id, row


@dataclass
class PreparedSlice:
    """A slice decoded, and for the usual slice (every record accepted, distinct rows, no
    tombstone) its rows' gates and index plan worked out: prepare_parameters, off the lock."""

    ok: np.ndarray  # (n,) decoded by the one-pass decode
    batch: RowBatch
    rows: PreparedRows | None  # None: not the usual slice
    versions: VersionsAhead | None = None  # the stored rows' versions (a worker's memory holds them)


def prepare_parameters(half: IdHalf, records: Sequence[tuple[bytes | None, bytes | None]],
                       ceiling: int = MAX_VERSION) -> PreparedSlice:
    """apply_parameters' work for a slice that a worker does off the engine lock, beside
    searches but never beside another apply: the reads (decode, gates, the ID index's plan, the
    stored rows' versions) and the rows' KV write where the memory allows it ahead (every record
    accepted, none above ceiling, which only rises until the apply: IdMemory.write_ahead)."""
    memory = half.memory
    ok, batch = decode_served([k for k, _ in records], [v for _, v in records], memory.table, memory.config.dim)
    if not (ok.all() and len(set(batch.ids)) == len(records)):
        return PreparedSlice(ok, batch, None)
    versions = memory.versions_ahead(batch.ids)
    rows = half.prepare_rows(batch.ids, batch.vectors, None if versions is None else ~versions.absent)
    if (batch.versions <= min(ceiling, MAX_VERSION)).all():
        versions = memory.write_ahead(batch, versions)
    return PreparedSlice(ok, batch, rows, versions)


def apply_parameters(half: IdHalf, records: Sequence[tuple[bytes | None, bytes | None]],
                     ceiling: int = MAX_VERSION, prepared: PreparedSlice | None = None) -> list[ParamOutcome]:
    """Apply (key, value) records in order; one outcome per record (whatever one raises, it is
    that record's). The slice is decoded in one pass (store/row_batch.py; records it does not
    accept one by one, with the reason), runs of distinct rows are stored in one KV write, and
    the changed rows' vectors go to the ID index and row sample in place (no rebuild, no read
    back), so the next ranking sees the new rows. prepared: prepare_parameters' of these records
    (done now when None)."""
    prepared = prepare_parameters(half, records) if prepared is None else prepared
    if len(prepared.batch) != len(records):
        raise ValueError(f"prepared slice of {len(prepared.batch)} records for {len(records)}")
    batch = prepared.batch
    ok = prepared.ok & (batch.versions <= min(ceiling, MAX_VERSION))
    if ok.all() and prepared.rows is not None:  # the usual slice: one run, no tombstone
        whole = _store_whole(half, batch, prepared.rows, prepared.versions)
        if whole is not None:
            return whole
    out: list[ParamOutcome | None] = [None] * len(records)
    final: dict[str, int | None] = {}  # changed ids -> record position of the row now (None: deleted)
    before: dict[str, bool] = {}  # ids stored: was a row stored before this slice's first record of it
    _store_runs(half, batch, records, ok.tolist(), ceiling, out, final, before)
    live = [(i, k) for i, k in final.items() if k is not None]
    if live:
        half.rows_changed([i for i, _ in live], batch.vectors[[k for _, k in live]],
                          known=[before.get(i, False) for i, _ in live])  # the row sample knew it
    gone = [i for i, k in final.items() if k is None]
    if gone:
        half.rows_changed(gone, [None] * len(gone))
    return out  # type: ignore[return-value]  # every None was filled


def _store_whole(half: IdHalf, batch: RowBatch, rows: PreparedRows,
                 versions: VersionsAhead | None) -> list[ParamOutcome] | None:
    """The usual slice, accepted rows of distinct ids and no tombstone, stored in one put_batch
    and its applied rows passed on (as prepared), with no per-record bookkeeping; None when
    put_batch raised (nothing stored: the caller goes record by record, so an error stays its
    record's)."""
    try:
        applied, created = half.memory.put_batch(batch, versions)
    except Exception as e:
        if isinstance(e, (OSError, MemoryError)):
            raise
        return None
    changed = np.flatnonzero(applied)
    if len(changed):
        half.rows_prepared(rows if len(changed) == len(batch) else rows.take(changed), known=~created[changed])
    return [_APPLIED if a else _STALE for a in applied.tolist()]


def _store_runs(half: IdHalf, batch: RowBatch, records: Sequence[tuple[bytes | None, bytes | None]],
                ok: list[bool], ceiling: int, out: list[ParamOutcome | None], final: dict[str, int | None],
                before: dict[str, bool]) -> None:
    """Records in order, those the one-pass decode did not accept decoded one by one, stored in
    runs of distinct rows (a repeated row starts the next run, so the first goes in first)."""
    memory = half.memory
    run: dict[str, int] = {}  # distinct ids -> record position
    tombstones: set[int] = set()
    for k, (key, value) in enumerate(records):
        item_id = batch.ids[k] if ok[k] else _decode_one(batch, k, key, value, ceiling, memory, out)
        if item_id is None:
            continue
        if value is None:
            tombstones.add(k)
        if item_id in run:
            _store_run(half, batch, run, tombstones, out, final, before)
        run[item_id] = k
    _store_run(half, batch, run, tombstones, out, final, before)


def _decode_one(batch: RowBatch, k: int, key: bytes | None, value: bytes | None, ceiling: int,
                memory: IdMemory, out: list[ParamOutcome | None]) -> str | None:
    """A record the one-pass decode did not accept (a tombstone, an old format, a bad one):
    decoded alone into batch row k; its id, or None with out[k] saying why it is corrupt."""
    try:
        item_id, row = decode_parameter(key, value, memory.table, memory.config.dim, ceiling)
    except CorruptParameter as e:
        out[k] = ParamOutcome("corrupt", str(e))
        return None
    if row is not None:
        batch.set_row(k, item_id, bytes(value), row)  # type: ignore[arg-type]  # not a tombstone
    return item_id


def _store_run(half: IdHalf, batch: RowBatch, run: dict[str, int], tombstones: set[int],
               out: list[ParamOutcome | None], final: dict[str, int | None], before: dict[str, bool]) -> None:
    """Store one run of distinct rows (puts in one batch, tombstones in one call) and note
    outcomes and, at an id's first change in the slice, whether a row was stored before; should a
    call raise, each row of the run alone, so an error stays its record's."""
    items = list(run.items())
    run.clear()
    puts = [(i, k) for i, k in items if k not in tombstones] if tombstones else items
    gone = [(i, k) for i, k in items if k in tombstones]
    try:
        at = [k for _, k in puts]
        whole = at == list(range(len(batch)))
        applied, created = half.memory.put_batch(batch if whole else batch.take(at)) if puts else ([], [])
        existed = half.memory.delete([i for i, _ in gone]) if gone else []
    except Exception as e:
        if isinstance(e, (OSError, MemoryError)):
            raise
        for i, k in items:
            out[k] = _one(half, i, None if k in tombstones else batch.row(k))
            if out[k].outcome in CHANGED:
                final[i] = None if k in tombstones else k
                before.setdefault(i, False)  # not known: the row sample judges it afresh
        return
    for (i, k), was, new in zip(puts, list(applied), list(created), strict=True):
        out[k] = _APPLIED if was else _STALE
        if was:
            final[i] = k
            before.setdefault(i, not new)
    for (i, k), was in zip(gone, existed, strict=True):
        out[k] = _DELETED if was else _ABSENT
        if was:
            final[i] = None
            before.setdefault(i, True)


def _one(half: IdHalf, item_id: str, row: IdRow | None) -> ParamOutcome:
    """One record applied alone: its outcome, or why it is corrupt."""
    try:
        return ParamOutcome(_apply_one(half, item_id, row))
    except CorruptParameter as e:
        return ParamOutcome("corrupt", str(e))
    except Exception as e:  # nobody listed it: still this record's, not the worker's
        if isinstance(e, (OSError, MemoryError)):
            raise
        return ParamOutcome("corrupt", f"unexpected error: {type(e).__name__}: {e}"[:512])


def _apply_one(half: IdHalf, item_id: str, row: IdRow | None) -> str:
    try:
        if row is None:
            return "deleted" if half.memory.delete([item_id])[0] else "absent"
        return "applied" if half.memory.put_rows([item_id], [row])[0] else "stale"
    except (StateCodecError, ValueError) as e:  # decode_row checks all put_rows does; belt only
        raise CorruptParameter(f"bad parameter row: {e}") from e
