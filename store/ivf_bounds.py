"""Which list each row of an IVF lies in, a few lists nearest it besides, and a lower bound on
its distance to every other list.

A changed row must go to the list whose centroid is nearest its new vector (L2 on the augmented
vectors, store/faiss_index.py), and searching every centroid for that is most of the cost of
applying a sync. Most rows the trainer changes move little, so they stay nearest their list; the
triangle inequality shows it without a search (the bound Hamerly's k-means keeps, widened to a
few candidates as Elkan's keeps one per centroid): a row holds its list and the next CANDIDATES - 1
lists nearest it when it was placed, and `lower`, at most its distance to any list outside them.
A row that moved by delta is at least lower - delta from every outside list, so when the nearest
of its candidates (distances computed exactly, a handful per row) is nearer than that, and nearer
than the other candidates by a margin, that candidate is its list, and lower - delta bounds the
outside lists again. A row that fails the test (or was never placed here) is searched: its
nearest lists and the next one's distance, an exact `lower`. With one candidate a row whose second
list lies about as near as its own is searched at nearly every sync; with four (the second, third
and fourth nearest held) the outside lists start further away.

The test keeps a margin (MARGIN x the largest norm) above the rounding of FAISS's distances
(float32 GEMM), so a row kept in a list is one FAISS's own search would put there too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# (vectors (n, d), k) -> (squared distances (n, k), lists (n, k)) of the k nearest centroids
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

MARGIN = 1e-3  # of the augmented vectors' norm: far above float32 rounding of their distances
CANDIDATES = 4  # lists held per row: its own and the next nearest when placed
_FAR = np.float32(1e30)  # the distance of a candidate not held: never the nearest, no inf - inf
_UNPLACED = -1


@dataclass
class Moves:
    """ListBounds.plan_move's result: what commit_move records (per row unless said)."""

    labels: np.ndarray
    held: np.ndarray  # (n, width) the candidate lists read
    delta: np.ndarray  # how far each row moved
    keep: np.ndarray  # kept in a candidate without a search
    to: np.ndarray  # the nearest candidate's column
    searched: np.ndarray  # positions of the rows searched
    dist: np.ndarray | None  # their search's (distances, lists), None when none was
    lists: np.ndarray | None

    def take(self, at: np.ndarray) -> Moves:
        """The plan of rows at (positions, ascending) alone."""
        inv = np.full(len(self.labels), -1, np.int64)
        inv[self.searched] = np.arange(len(self.searched))
        rows = inv[at]
        hit = rows >= 0
        dist = None if self.dist is None else self.dist[rows[hit]]
        lists = None if self.lists is None else self.lists[rows[hit]]
        return Moves(self.labels[at], self.held[at], self.delta[at], self.keep[at], self.to[at],
                     np.flatnonzero(hit), dist, lists)


class ListBounds:
    """Per label: its list (-1: not placed through these bounds), its other candidate lists (-1:
    none) and the lower bound on its distance to every list outside them."""

    def __init__(self, centroids: np.ndarray, search: Search, norm: float, candidates: int = CANDIDATES) -> None:
        """centroids (nlist, d) of a trained IVF (fixed from then on) and its quantizer's search."""
        self.centroids, self.search = np.asarray(centroids, np.float32), search
        self.margin = MARGIN * max(norm, float(np.sqrt((self.centroids**2).sum(1).max(initial=0.0))))
        self.width = max(1, min(candidates, len(self.centroids)))
        self.lists = np.full((0, self.width), _UNPLACED, np.int32)  # column 0: the row's own list
        self.lower = np.zeros(0, np.float32)
        self.kept = 0  # changed rows kept in their list without a search (a statistic)

    def place(self, labels: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """The nearest list of each (augmented) vector by a search of every centroid; recorded."""
        return self.commit_place(labels, *self.plan_place(vectors))

    def plan_place(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """place's search alone (reads nothing of the bounds): (distances, lists) of its nearest lists."""
        return self.search(vectors, min(self.width + 1, len(self.centroids)))

    def commit_place(self, labels: np.ndarray, dist: np.ndarray, near: np.ndarray) -> np.ndarray:
        """Record plan_place's search for labels; their nearest lists."""
        k = near.shape[1]
        lists = np.full((len(labels), self.width), _UNPLACED, np.int32)
        lists[:, :min(k, self.width)] = near[:, :self.width]
        lower = np.sqrt(np.maximum(dist[:, self.width], 0.0)) if k > self.width else np.full(len(labels), np.inf)
        self._record(labels, lists, lower)
        return np.ascontiguousarray(near[:, 0], np.int64)

    def move(self, labels: np.ndarray, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        """The nearest list of each changed row (augmented vectors, old: as stored): kept where
        the bound shows it, searched for the rest; recorded."""
        return self.commit_move(self.plan_move(labels, new, old))

    def plan_move(self, labels: np.ndarray, new: np.ndarray, old: np.ndarray) -> Moves:
        """move without recording: which rows the bound keeps, and the search of the others.
        It only reads the bounds, so it may run off the caller's lock; commit_move is exact while
        nothing changed them since. Few numpy calls: at 32 rows a slice's cost is their count."""
        held, lower = self._held(labels)  # held (n, width); -1 where not placed or fewer lists
        delta = _norms(new - old)
        near = np.where(held < 0, _FAR, _norms(new[:, None, :] - self.centroids[held]))  # -1 read the last list
        to = near.argmin(axis=1)
        if self.width > 1:
            two = np.partition(near, 1, axis=1)
            first, gap = two[:, 0], two[:, 1] - two[:, 0]
        else:
            first, gap = near[:, 0], _FAR
        # a row never placed here has lower 0: not kept
        keep = (first + delta + self.margin < lower) & (gap > self.margin)
        searched = np.flatnonzero(~keep)
        dist, lists = self.plan_place(np.ascontiguousarray(new[searched])) if len(searched) else (None, None)
        return Moves(labels, held, delta, keep, to, searched, dist, lists)

    def commit_move(self, moves: Moves) -> np.ndarray:
        """Record a plan_move; the nearest list of each row."""
        labels, held, keep, to = moves.labels, moves.held, moves.keep, moves.to
        self._grow(int(labels.max(initial=-1)) + 1)
        if keep.any():
            self.lower[labels[keep]] -= moves.delta[keep]
            self.kept += int(keep.sum())
            cross = np.flatnonzero(keep & (to > 0))  # into another candidate: it becomes column 0
            if len(cross):
                held[cross, to[cross]], held[cross, 0] = held[cross, 0], held[cross, to[cross]]
                self.lists[labels[cross]] = held[cross]
        lists = held[:, 0].astype(np.int64)
        if len(moves.searched):
            at = moves.searched
            lists[at] = self.commit_place(labels[at], moves.dist, moves.lists)
        return lists

    def _held(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lists (n, width), lower (n,)) of labels; a label past the arrays is not placed."""
        inside = labels < len(self.lists)
        if inside.all():
            return self.lists[labels], self.lower[labels]
        held = np.full((len(labels), self.width), _UNPLACED, np.int32)
        lower = np.zeros(len(labels), np.float32)
        held[inside], lower[inside] = self.lists[labels[inside]], self.lower[labels[inside]]
        return held, lower

    def _record(self, labels: np.ndarray, lists: np.ndarray, lower: np.ndarray) -> None:
        self._grow(int(labels.max(initial=-1)) + 1)
        self.lists[labels], self.lower[labels] = lists, lower

    def _grow(self, size: int) -> None:
        if size <= len(self.lists):
            return
        size = max(size, 2 * len(self.lists))
        more = np.full((size - len(self.lists), self.width), _UNPLACED, np.int32)
        self.lists = np.concatenate([self.lists, more])
        self.lower = np.concatenate([self.lower, np.zeros(size - len(self.lower), np.float32)])


def _norms(x: np.ndarray) -> np.ndarray:
    """L2 norms along the last axis (one einsum: no linalg.norm overhead per call)."""
    return np.sqrt(np.einsum("...k,...k->...", x, x))
