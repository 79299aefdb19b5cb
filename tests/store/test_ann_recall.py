"""store/ann_recall.py: the exact oracle of ANN recall (each row scored by its best query)."""

from __future__ import annotations

import numpy as np

from store.ann_recall import exact_top


def test_exact_top_scores_each_row_by_its_best_query():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    best = (queries @ vectors.T).max(axis=0)  # numpy oracle of the oracle
    assert exact_top(queries, vectors, 20) == set(np.argsort(-best)[:20].tolist())
    assert exact_top(queries[:1], vectors, 5) == set(np.argsort(-(queries[0] @ vectors.T))[:5].tolist())
