"""The oracle ANN recall is measured against: a user's exact top-k over all its query vectors."""

from __future__ import annotations

import numpy as np

from .faiss_index import exact_knn


def exact_top(queries: np.ndarray, vectors: np.ndarray, k: int) -> set[int]:
    """A user's exact top-k rows of `vectors` (each row scored by its best query), by brute force."""
    scores, labels = exact_knn(queries, vectors, k)
    best: dict[int, float] = {}
    for s, lab in zip(scores.ravel().tolist(), labels.ravel().tolist(), strict=True):
        if s > best.get(lab, -np.inf):
            best[lab] = s
    return set(sorted(best, key=lambda i: -best[i])[:k])
