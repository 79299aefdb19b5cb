"""A dense working copy of some rows of an IdMemory for a run of sequential Adagrad steps.

Per-row bookkeeping (cache, dirty marks, versions) costs microseconds per row and a step with a
full softmax touches every row; a block pays it once per run of steps instead of once per step.
Each step is the one IdMemory.apply_gradients takes (duplicate ids summed in float64, the same
float32 Adagrad), in order, so a run of steps through a block ends with the same rows, bit for
bit, as the steps applied one by one (tests/store/test_row_block.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .id_memory import IdMemory, adagrad_step, sum_duplicates


class RowBlock:
    """Rows checked out of one IdMemory (copies); `commit` writes the stepped ones back."""

    def __init__(self, memory: IdMemory) -> None:
        self.memory = memory
        self.index: dict[str, int] = {}  # id -> row of the arrays
        self._grow(64)

    def _grow(self, capacity: int) -> None:
        """Arrays with room for `capacity` rows (doubling: a block checked out piecemeal, e.g.
        sampled negatives per step, copies each row O(1) times)."""
        n, dim = len(self.index), self.memory.config.dim
        old = getattr(self, "vectors", None)
        vectors, accum = np.zeros((capacity, dim), np.float32), np.zeros((capacity, dim), np.float32)
        initial = np.zeros((capacity, dim), np.float32)  # the vectors as checked out
        steps = np.zeros(capacity, np.int64)  # steps each row took in this block
        if old is not None:
            vectors[:n], accum[:n], steps[:n] = self.vectors[:n], self.accum[:n], self.steps[:n]
            initial[:n] = self.initial[:n]
        self.vectors, self.accum, self.steps, self.initial = vectors, accum, steps, initial

    def ensure(self, ids: Sequence[str]) -> None:
        """Check out the ids not in the block yet (each must have a row)."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.index]
        if not missing:
            return
        rows = [self.memory.get_row(i) for i in missing]
        absent = [i for i, r in zip(missing, rows, strict=True) if r is None]
        if absent:
            raise KeyError(f"row block: no row for {absent[:3]}")
        n = len(self.index)
        if n + len(rows) > len(self.vectors):
            self._grow(max(2 * len(self.vectors), n + len(rows)))
        self.vectors[n:n + len(rows)] = np.stack([r.vector for r in rows])
        self.initial[n:n + len(rows)] = self.vectors[n:n + len(rows)]
        self.accum[n:n + len(rows)] = np.stack([r.accum for r in rows])
        for i in missing:
            self.index[i] = len(self.index)

    def lookup(self, ids: Sequence[str]) -> np.ndarray:
        """(N, dim) current vectors of ids (checked out first where needed)."""
        self.ensure(ids)
        return self.vectors[[self.index[i] for i in ids]]

    def origin(self, ids: Sequence[str]) -> np.ndarray:
        """(N, dim) vectors of checked-out ids as they were checked out (before this block's steps)."""
        return self.initial[[self.index[i] for i in ids]]

    def apply_gradients(self, ids: Sequence[str], grads: np.ndarray, squares: np.ndarray | None = None) -> None:
        """One Adagrad step per distinct id, as IdMemory.apply_gradients takes it. squares (same
        shape, >= 0): each entry's sum of squared per-use gradients, when an entry sums several
        uses (a batched step); the accumulators then grow by these, as the uses one by one would."""
        grads = np.asarray(grads, np.float32)
        if grads.shape != (len(ids), self.memory.config.dim) or not np.isfinite(grads).all():
            raise ValueError(f"grads: expected finite ({len(ids)}, {self.memory.config.dim}) values")
        if squares is not None:
            squares = np.asarray(squares, np.float32)
            if squares.shape != grads.shape or not (np.isfinite(squares).all() and (squares >= 0).all()):
                raise ValueError("squares: expected finite non-negative values shaped as grads")
        self.ensure(ids)
        unique, summed, _, _ = sum_duplicates(list(ids), grads, None)
        if squares is not None:
            squares = sum_duplicates(list(ids), squares, None)[1]
        at = np.fromiter((self.index[i] for i in unique), np.int64, len(unique))
        vectors, accum = self.vectors[at], self.accum[at]
        adagrad_step(vectors, accum, summed, self.memory.config.lr, self.memory.config.eps, squares)
        self.vectors[at], self.accum[at] = vectors, accum
        self.steps[at] += 1

    def commit(self) -> int:
        """Write every row that took a step back to the memory; returns how many."""
        ids = list(self.index)
        stepped = np.flatnonzero(self.steps[:len(ids)])
        self.memory.write_steps([ids[k] for k in stepped], self.vectors[stepped], self.accum[stepped],
                                self.steps[stepped])
        self.steps[:] = 0
        return len(stepped)
