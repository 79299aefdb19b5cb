"""Which list each row of an IVF lies in, and a lower bound on its distance to every other list.

A changed row must go to the list whose centroid is nearest its new vector (L2 on the augmented
vectors, store/faiss_index.py), and searching every centroid for that is most of the cost of
applying a sync. Most rows the trainer changes move little, so they stay nearest their list; the
triangle inequality shows it without a search (the bound Hamerly's k-means keeps): with the
row's distance to its own centroid d, and `lower`, at most its distance to any other centroid,
a row that moved by delta is still nearest its list when |x' - c_own| < lower - delta, and then
lower - delta bounds the others again. A row that fails the test (or was never placed here) is
searched: its nearest centroid and the second nearest's distance, an exact `lower`.

The test keeps a margin (MARGIN x the largest norm) above the rounding of FAISS's distances
(float32 GEMM), so a row kept in its list is one FAISS's own search would put there too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (vectors (n, d), k) -> (squared distances (n, k), lists (n, k)) of the k nearest centroids
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

MARGIN = 1e-3  # of the augmented vectors' norm: far above float32 rounding of their distances
_UNPLACED = -1


class ListBounds:
    """Per label: its list (-1: not placed through these bounds) and the lower bound."""

    def __init__(self, centroids: np.ndarray, search: Search, norm: float) -> None:
        """centroids (nlist, d) of a trained IVF (fixed from then on) and its quantizer's search."""
        self.centroids, self.search = np.asarray(centroids, np.float32), search
        self.margin = MARGIN * max(norm, float(np.sqrt((self.centroids**2).sum(1).max(initial=0.0))))
        self.lists = np.full(0, _UNPLACED, np.int32)
        self.lower = np.zeros(0, np.float32)
        self.kept = 0  # changed rows kept in their list without a search (a statistic)

    def place(self, labels: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """The nearest list of each (augmented) vector by a search of every centroid; recorded."""
        dist, near = self.search(vectors, min(2, len(self.centroids)))
        lists = np.ascontiguousarray(near[:, 0])
        lower = np.sqrt(np.maximum(dist[:, 1], 0.0)) if dist.shape[1] > 1 else np.full(len(lists), np.inf)
        self._record(labels, lists, lower)
        return lists

    def move(self, labels: np.ndarray, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        """The nearest list of each changed row (augmented vectors, old: as stored): kept where
        the bound shows it, searched for the rest; recorded."""
        self._grow(int(labels.max(initial=-1)) + 1)
        own = self.lists[labels].astype(np.int64)
        placed = own >= 0
        delta = np.linalg.norm(new - old, axis=1)
        near = np.linalg.norm(new - self.centroids[np.maximum(own, 0)], axis=1)
        keep = placed & (near + delta + self.margin < self.lower[labels])
        self.lower[labels[keep]] -= delta[keep]
        self.kept += int(keep.sum())
        lists = own.copy()
        if not keep.all():
            lists[~keep] = self.place(labels[~keep], np.ascontiguousarray(new[~keep]))
        return lists

    def _record(self, labels: np.ndarray, lists: np.ndarray, lower: np.ndarray) -> None:
        self._grow(int(labels.max(initial=-1)) + 1)
        self.lists[labels], self.lower[labels] = lists, lower

    def _grow(self, size: int) -> None:
        if size <= len(self.lists):
            return
        size = max(size, 2 * len(self.lists))
        self.lists = np.concatenate([self.lists, np.full(size - len(self.lists), _UNPLACED, np.int32)])
        self.lower = np.concatenate([self.lower, np.zeros(size - len(self.lower), np.float32)])
