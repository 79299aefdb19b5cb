"""Exact numpy index: the correctness oracle for the FAISS index in tests and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .config import FetchBound
from .vector_index import Hit, as_query_batch, dedupe_last, search_grouped

logger = logging.getLogger(__name__)


class _RowIds(Mapping[int, str]):
    """Row label -> item id view over the id list, without copying it per search."""

    def __init__(self, ids: list[str]) -> None:
        self._ids = ids

    def __getitem__(self, row: int) -> str:
        if not 0 <= row < len(self._ids):
            raise KeyError(row)
        return self._ids[row]

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._ids)))


class BruteForceIndex:
    """Rows of a float32 matrix; removal moves the last row into the hole."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vectors = np.zeros((0, dim), np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def upsert(self, item_ids: list[str], vectors: np.ndarray) -> None:
        item_ids, vectors = dedupe_last(item_ids, vectors, self.dim)
        new = [i for i in item_ids if i not in self._row]
        self._vectors = np.concatenate([self._vectors, np.zeros((len(new), self.dim), np.float32)])
        for item_id in new:
            self._row[item_id] = len(self._ids)
            self._ids.append(item_id)
        rows = [self._row[i] for i in item_ids]
        self._vectors[rows] = vectors

    def remove(self, item_ids: Iterable[str]) -> None:
        for item_id in item_ids:
            row = self._row.pop(item_id, None)
            if row is None:
                continue
            last = len(self._ids) - 1
            if row != last:
                self._vectors[row] = self._vectors[last]
                self._ids[row] = self._ids[last]
                self._row[self._ids[row]] = row
            self._ids.pop()
            self._vectors = self._vectors[:last]

    def search(self, queries: np.ndarray, k: int, exclude: set[str] | None = None) -> list[Hit]:
        return self.search_many([queries], k, [exclude])[0]

    def search_many(
        self,
        queries: Sequence[np.ndarray],
        k: int,
        excludes: Sequence[set[str] | None] | None = None,
        bound: FetchBound | None = None,
    ) -> list[list[Hit]]:
        excludes = list(excludes) if excludes is not None else [None] * len(queries)
        stacked, counts = as_query_batch(queries, self.dim)
        if not self._ids or not len(stacked):
            return [[] for _ in queries]
        return search_grouped(self.top_k, stacked, counts, k, _RowIds(self._ids), excludes,
                              cap=len(self._ids), bound=bound)

    def top_k(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Row labels and scores of the exact top-k per query, best first."""
        k = min(k, len(self._ids))
        scores = queries @ self._vectors.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(
            part_scores, order, axis=1
        )
