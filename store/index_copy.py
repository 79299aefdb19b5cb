"""A copy of a vector index's contents taken in bounded chunks, each under the owner's lock, while
the index keeps changing between them; what changed since the copy began is journalled and
carried over. (faiss stays in faiss_index.py: the chunks come in as an iterator.)

Why it is exact: labels are never reused and a label's vector never changes, so a label copied
while live has the vector it has at the end unless it was removed, and then the removal is in
the journal. A chunk reads only labels below `end_label` (the next label when the copy began);
every later label is an add in the journal. A label removed before its chunk was read is not
read, and its journalled removal removes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

# (labels, vectors, ids) of an add, or (labels, None, None) of a removal
Entry = tuple[np.ndarray, np.ndarray | None, list[str] | None]
Read = Callable[[int, int], tuple[np.ndarray, np.ndarray]]  # (start, stop) -> live (labels, vectors)
# a time-bounded copy's first step (a small index copies in one, as before) and its smallest (so a
# copy always gets on)
FIRST_ROWS, LEAST_ROWS = 1024, 64


class ChunkedCopy:
    """The owner calls `step` under its lock until it returns True, and journals every add and
    removal it makes meanwhile (and after, for as long as a consumer replays the journal)."""

    def __init__(self, read: Read, end_label: int, dim: int, rows: int,
                 id_of: Mapping[int, str] | None = None, budget_s: float | None = None) -> None:
        """read(start, stop) gives the live labels in [start, stop) with their vectors, read when
        called; each step reads at most `rows` labels, and with budget_s as many as fit that
        time at the cost per label measured so far (at least LEAST_ROWS). With id_of the copy
        also keeps each label's item id (a snapshot needs them, a rebuild does not)."""
        self.end_label, self.dim, self.rows, self.budget_s = end_label, dim, rows, budget_s
        self._step_rows = rows if budget_s is None else min(rows, FIRST_ROWS)
        self._per_row_s = 0.0  # measured (moving average); 0 before the first step
        self._read, self._id_of = read, id_of
        self._next = 0  # the first label not read yet
        self._labels: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self._ids: list[str] = []
        self.journal: list[Entry] = []  # appended by the owner only; entries never change
        self.done = end_label == 0
        self.steps = 0

    def step(self) -> bool:
        """Copy the next chunk (bounded work; the caller holds the lock); True once all is copied."""
        if self.done:
            return True
        stop = min(self._next + self._step_rows, self.end_label)
        t = time.perf_counter()
        labels, vectors = self._read(self._next, stop)
        self._pace(stop - self._next, time.perf_counter() - t)
        self._next, self.done = stop, stop >= self.end_label
        self._labels.append(np.asarray(labels, np.int64))
        self._vectors.append(np.asarray(vectors, np.float32).reshape(-1, self.dim))
        if self._id_of is not None:
            self._ids.extend(self._id_of[label] for label in labels.tolist())
        self.steps += 1
        return self.done

    def _pace(self, rows: int, seconds: float) -> None:
        """The next step's labels: what fits budget_s at the measured cost per label."""
        if self.budget_s is None or rows <= 0:
            return
        per_row = seconds / rows
        self._per_row_s = per_row if self._per_row_s <= 0 else 0.7 * self._per_row_s + 0.3 * per_row
        fit = int(self.budget_s / self._per_row_s) if self._per_row_s > 0 else self.rows
        self._step_rows = max(min(LEAST_ROWS, self.rows), min(self.rows, fit))

    def record_add(self, labels: np.ndarray, vectors: np.ndarray, ids: list[str]) -> None:
        """Journal an add (vectors copied: callers reuse their buffers)."""
        self.journal.append((labels.copy(), np.array(vectors, np.float32, copy=True), list(ids)))

    def record_remove(self, labels: np.ndarray) -> None:
        """Journal a removal."""
        if len(labels):
            self.journal.append((labels.copy(), None, None))

    def copied(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels [n], vectors [n, dim]) the chunks read, without the journal. Once: the chunks
        are let go as they are joined, so the copy never holds its vectors twice."""
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64)
        vectors = np.empty((len(labels), self.dim), np.float32)
        row = 0
        while self._vectors:
            chunk = self._vectors.pop(0)
            vectors[row:row + len(chunk)] = chunk
            row += len(chunk)
        self._labels = []
        return labels, vectors

    def contents(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(labels, vectors, ids) of the index when the journal was last appended to: the chunks
        plus the journalled adds, less the journalled removals (once, after the owner stopped)."""
        labels, vectors = self.copied()
        adds = [(lab, vec, ids) for lab, vec, ids in self.journal if vec is not None]
        removed = [lab for lab, vec, _ in self.journal if vec is None]
        labels = np.concatenate([labels, *(lab for lab, _, _ in adds)])
        vectors = np.concatenate([vectors, *(vec for _, vec, _ in adds)])
        with_ids = self._id_of is not None
        ids = self._ids + [i for _, _, add_ids in adds for i in (add_ids or [])] if with_ids else []
        if removed:
            keep = ~np.isin(labels, np.concatenate(removed))
            labels, vectors = labels[keep], vectors[keep]
            ids = [i for i, k in zip(ids, keep.tolist(), strict=True) if k] if with_ids else ids
        return labels, vectors, ids
