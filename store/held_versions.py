"""The version of every stored row, held in memory (IdMemory with config.versions_held).

Each id has a slot in one uint64 array. A batch's slots are looked up once (a worker: off its
engine lock, IdMemory.versions_ahead) and its new versions then written in one numpy
assignment: with a look-up per row under the lock, the lock's time grew with the cache misses of
a million-entry dict. Slots change only when a row is created or removed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class HeldVersions:
    """id -> version (0..2**64-1) of every row, by slot."""

    def __init__(self, versions: dict[str, int] | None = None) -> None:
        versions = versions or {}
        self._slot: dict[str, int] = {i: k for k, i in enumerate(versions)}
        self._version = np.zeros(max(len(versions), 1024), np.uint64)
        self._version[:len(versions)] = np.fromiter(versions.values(), np.uint64, len(versions))
        self._free: list[int] = []  # slots of removed rows
        self._top = len(versions)  # slots ever handed out

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._slot

    def items(self) -> Iterator[tuple[str, int]]:
        """(id, version) of every row."""
        return ((i, int(self._version[k])) for i, k in self._slot.items())

    def slots(self, ids: Sequence[str]) -> np.ndarray:
        """(N,) int64 slots of ids; -1 where an id has no row."""
        return np.fromiter(map(self._slot.get, ids, [-1] * len(ids)), np.int64, len(ids))

    def at(self, slots: np.ndarray) -> np.ndarray:
        """(N,) uint64 versions at slots (0 where a slot is -1)."""
        return np.where(slots >= 0, self._version[np.maximum(slots, 0)], np.uint64(0))

    def write(self, ids: Sequence[str], slots: np.ndarray, versions: np.ndarray) -> None:
        """Rows of ids (distinct), at slots as slots() gave them while no row was created or
        removed since, now have these versions; ids without a slot get one."""
        held = slots >= 0
        self._version[slots[held]] = versions[held]
        if not held.all():
            for k in np.flatnonzero(~held).tolist():
                self.set(ids[k], int(versions[k]))

    def set(self, item_id: str, version: int) -> None:
        """item_id's row now has this version (a new row takes a slot)."""
        slot = self._slot.get(item_id)
        if slot is None:
            slot = self._slot[item_id] = self._new_slot()
        self._version[slot] = version

    def pop(self, item_id: str) -> None:
        """item_id's row is removed (nothing when it has none)."""
        slot = self._slot.pop(item_id, None)
        if slot is not None:
            self._free.append(slot)

    def _new_slot(self) -> int:
        if self._free:
            return self._free.pop()
        if self._top == len(self._version):
            self._version = np.concatenate([self._version, np.zeros(len(self._version), np.uint64)])
        self._top += 1
        return self._top - 1
