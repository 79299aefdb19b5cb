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

from store import IdRow, StateCodecError, decode_row, parse_row_key
from streams.engine.id_half import IdHalf

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


def apply_parameters(half: IdHalf, records: Sequence[tuple[bytes | None, bytes | None]],
                     ceiling: int = MAX_VERSION) -> list[ParamOutcome]:
    """Apply (key, value) records in order; one outcome per record (whatever one raises, it is
    that record's). Runs of distinct rows are stored in one put_rows call, and the changed rows'
    decoded vectors go to the ID index and row sample in place (no rebuild, no read back), so
    the next ranking sees the new rows."""
    memory = half.memory
    out: list[ParamOutcome | None] = []
    run: dict[str, tuple[int, IdRow | None]] = {}  # distinct ids -> (record, row or tombstone)
    final: dict[str, np.ndarray | None] = {}  # changed ids -> vector now (None: deleted)
    for key, value in records:
        try:
            item_id, row = decode_parameter(key, value, memory.table, memory.config.dim, ceiling)
        except CorruptParameter as e:
            out.append(ParamOutcome("corrupt", str(e)))
            continue
        if item_id in run:  # a second record of a row in this run: the first goes in first
            _store_run(half, run, out, final)
        run[item_id] = (len(out), row)
        out.append(None)
    _store_run(half, run, out, final)
    half.rows_changed(list(final), list(final.values()))
    return out  # type: ignore[return-value]  # every None was filled by _store_run


def _store_run(half: IdHalf, run: dict[str, tuple[int, IdRow | None]], out: list[ParamOutcome | None],
               final: dict[str, np.ndarray | None]) -> None:
    """Store one run of distinct rows (puts in one call, tombstones in one) and note outcomes;
    should the call raise, each row of the run alone, so an error stays its record's."""
    items = list(run.items())
    run.clear()
    puts = [(i, at, row) for i, (at, row) in items if row is not None]
    gone = [(i, at) for i, (at, row) in items if row is None]
    try:
        applied = half.memory.put_rows([i for i, _, _ in puts], [r for _, _, r in puts]) if puts else []
        existed = half.memory.delete([i for i, _ in gone]) if gone else []
    except Exception as e:
        if isinstance(e, (OSError, MemoryError)):
            raise
        for i, (at, row) in items:
            out[at] = _one(half, i, row)
            if out[at].outcome in CHANGED:
                final[i] = None if row is None else row.vector
        return
    for (i, at, row), ok in zip(puts, applied, strict=True):
        out[at] = ParamOutcome("applied" if ok else "stale")
        if ok:
            final[i] = row.vector
    for (i, at), was in zip(gone, existed, strict=True):
        out[at] = ParamOutcome("deleted" if was else "absent")
        if was:
            final[i] = None


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
