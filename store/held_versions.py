"""The version of every row of an ID table, held in memory: a dict of ids to slots of a uint64 array.

A worker applies syncs of thousands of rows to a table of a million. With versions as the values
of a dict, storing a slice's versions wrote each id's dict entry under the worker's lock, one
cache miss or more per row (1.1 us a row at 1M rows, a fifth of the apply). Here a slice's ids are
looked up once, ahead and off the lock (`slots`), and the versions go in by one numpy scatter;
only ids new to the table take a dict entry under the lock. A slot is stable while its id has a
row; a removed id's slot is reused, so slots read ahead hold only while nothing was removed or
added since (IdMemory checks its count of version changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class HeldVersions:
    """id -> version (a uint64) for every row; a mapping in the few ways IdMemory reads it."""

    def __init__(self, items: Iterable[tuple[str, int]] = ()) -> None:
        self._slot: dict[str, int] = {}
        self._values = np.zeros(1024, np.uint64)
        self._free: list[int] = []
        for item_id, version in items:
            self[item_id] = version

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._slot

    def items(self) -> Iterable[tuple[str, int]]:
        """(id, version) of every row, in no particular order."""
        values = self._values
        return ((item_id, int(values[slot])) for item_id, slot in self._slot.items())

    def get(self, item_id: str) -> int | None:
        slot = self._slot.get(item_id)
        return None if slot is None else int(self._values[slot])

    def __setitem__(self, item_id: str, version: int) -> None:
        slot = self._slot.get(item_id)
        if slot is None:
            slot = self._slot[item_id] = self._take()
        self._values[slot] = version

    def pop(self, item_id: str) -> None:
        """Forget item_id (absent: nothing)."""
        slot = self._slot.pop(item_id, None)
        if slot is not None:
            self._free.append(slot)

    def slots(self, ids: Sequence[str]) -> np.ndarray:
        """(N,) int64 slots of ids, -1 where an id has no version: one look-up each."""
        return np.fromiter(map(self._slot.get, ids, [-1] * len(ids)), np.int64, len(ids))

    def read(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((N,) uint64 versions, 0 where absent; (N,) bool absent) of slots from `slots`."""
        absent = slots < 0
        return np.where(absent, np.uint64(0), self._values[np.where(absent, 0, slots)]), absent

    def put(self, ids: Sequence[str], slots: np.ndarray, versions: np.ndarray) -> None:
        """Store versions of ids whose slots (from `slots`, still exact) were read ahead: one
        scatter for the ids that had a slot, a dict entry for each new one."""
        versions = np.asarray(versions, np.uint64)
        held = slots >= 0
        self._values[slots[held]] = versions[held]
        if not held.all():
            for k in np.flatnonzero(~held).tolist():
                self[ids[k]] = int(versions[k])

    def _take(self) -> int:
        if self._free:
            return self._free.pop()
        slot = len(self._slot) + len(self._free)  # every slot below it is taken or free
        if slot >= len(self._values):
            self._values = np.concatenate([self._values, np.zeros(len(self._values), np.uint64)])
        return slot
