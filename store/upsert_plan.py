"""An IVF upsert worked out ahead (FaissIndex.plan_upsert): the vectors augmented, the lists of
the changed rows checked against their bounds and the rest searched, all by reads alone, so a
caller can do it off its lock and hold the lock only to write (FaissIndex.upsert(plan=...)).

A plan is exact while the index it read has not changed since: it carries the index's change
count, and upsert falls back to the whole work when the count moved (a swap after a rebuild, an
upsert or removal between the plan and the write).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ivf_bounds import Moves


@dataclass
class UpsertPlan:
    """Per row (distinct ids): its label (-1: new to the index) and augmented vector; the moves of
    the held rows and the search of the new ones (rows in their order of the ids)."""

    owner: object  # the FaissIndex planned on
    changes: int  # its change count when planned
    ids: list[str]
    labels: np.ndarray  # (n,) int64
    padded: np.ndarray  # (n, d + 1) augmented vectors
    moves: Moves  # of the held rows (labels >= 0)
    placed: tuple[np.ndarray, np.ndarray] | None  # the new rows' (distances, lists); None: none new

    def take(self, at: np.ndarray) -> UpsertPlan:
        """The plan of rows at (positions, ascending) alone."""
        held = self.labels >= 0
        rank = np.cumsum(held) - 1  # position among the held rows
        mine = held[at]
        placed = self.placed
        if placed is not None:
            new_rank = np.cumsum(~held) - 1
            rows = new_rank[at[~mine]]
            placed = (placed[0][rows], placed[1][rows]) if len(rows) else None
        return UpsertPlan(self.owner, self.changes, [self.ids[k] for k in at.tolist()], self.labels[at],
                          self.padded[at], self.moves.take(rank[at[mine]]), placed)
