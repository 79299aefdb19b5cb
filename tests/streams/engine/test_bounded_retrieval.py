"""Bounded retrieval (q of the m UPE codes, fetch sizes bounded) against the exact oracle (all
codes, exact index, fetch grown by the seen list), and the engine's use of both bounds."""

from __future__ import annotations

import numpy as np

from model.query_codes import select_queries
from store import BruteForceIndex, FetchBound, IndexConfig
from store.faiss_index import FaissIndex
from store.synthetic import ClusteredVectors
from streams.engine.config import EngineConfig

DIM, M = 64, 32
SOURCES = 9  # the engine's most: max_sessions (8) session embeddings and the global one


def upe_like_codes(cv: ClusteredVectors, rng: np.random.Generator) -> np.ndarray:
    """32 codes as UPE makes them: attention mixtures of a few session embeddings (topics)."""
    z = cv.centres[rng.choice(len(cv.centres), SOURCES, replace=False)]
    z = z + rng.standard_normal(z.shape) * 0.3 / np.sqrt(DIM)
    alpha = np.exp(rng.standard_normal((M, SOURCES)) * 3)
    return ((alpha / alpha.sum(1, keepdims=True)) @ z).astype(np.float32)


def top10(cands: list[str], score: np.ndarray) -> list[str]:
    """The exact rerank of a candidate union (score: the oracle's, per item row)."""
    return sorted(cands, key=lambda i: -score[int(i[1:])])[:10]


def test_bounded_queries_return_the_exact_top_k_on_clustered_data():
    cv = ClusteredVectors(dim=DIM, n_clusters=40, seed=0)
    items, ids = cv.sample(4000, 1), [f"i{j}" for j in range(4000)]
    oracle, index = BruteForceIndex(DIM), FaissIndex(IndexConfig(dim=DIM))
    oracle.upsert(ids, items)
    index.upsert(ids, items)
    rng = np.random.default_rng(2)
    overlap, same, same_q2 = [], [], []
    for _ in range(20):
        codes = upe_like_codes(cv, rng)
        best = (items @ codes.T).max(axis=1)  # the oracle's score: max over every code
        seen = {ids[j] for j in np.argsort(-best)[:300:2]}  # half the best 300 were seen

        want = [i for i, _ in oracle.search_many([codes], 50, [seen])[0]]
        chosen = select_queries(codes, EngineConfig().query_codes)  # the engine's defaults
        got = [i for i, _ in index.search_many([chosen], 50, [seen], bound=EngineConfig().fetch)[0]]
        few = [i for i, _ in index.search_many([select_queries(codes, 2)], 50, [seen], bound=FetchBound())[0]]
        overlap.append(len(set(got) & set(want)) / 50)
        same.append(top10(got, best) == top10(want, best))
        same_q2.append(top10(few, best) == top10(want, best))
    assert all(same) and np.mean(overlap) >= 0.95
    assert not all(same_q2)  # 2 codes cannot cover 9 topics: the check can tell


def test_selection_keeps_every_code_when_q_is_m_or_zero_and_is_deterministic():
    codes = upe_like_codes(ClusteredVectors(dim=DIM, n_clusters=40, seed=0), np.random.default_rng(0))
    assert np.array_equal(select_queries(codes, 0), codes) and np.array_equal(select_queries(codes, M), codes)
    chosen = select_queries(codes, 6)
    assert chosen.shape == (6, DIM) and np.array_equal(chosen, select_queries(codes, 6))
    rows = [int(np.flatnonzero((codes == c).all(1))[0]) for c in chosen]
    assert rows == sorted(rows) and len(set(rows)) == 6  # distinct codes, original order


class RecordingIndex(BruteForceIndex):
    """The oracle index, recording each user's query rows and the bound it was asked for."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.calls: list[tuple[list[int], FetchBound | None]] = []

    def search_many(self, queries, k, excludes=None, bound=None):
        self.calls.append(([len(q) for q in queries], bound))
        return super().search_many(queries, k, excludes, bound)


def test_engine_queries_with_q_codes_and_the_configured_bound(engine_factory, tiny_model, events):
    bound = FetchBound(factor=3, limit=64)
    index = RecordingIndex(tiny_model.dim)
    engine = engine_factory(index=index, query_codes=2, fetch=bound)
    for e in events[:6]:
        assert engine.process_one(e).recommendation["items"]
    assert index.calls and all(rows == [2] and b == bound for rows, b in index.calls)
    everything = RecordingIndex(tiny_model.dim)
    engine = engine_factory(index=everything, query_codes=0)
    engine.process_one(events[0])
    assert everything.calls[0][0] == [tiny_model.config.m]


def test_worker_setting_overrides_the_engine_default_only_when_given(tiny_model):
    from streams.worker.config import WorkerSettings

    assert WorkerSettings().engine_config(tiny_model.config, "v").query_codes == EngineConfig().query_codes
    assert WorkerSettings(query_codes=3).engine_config(tiny_model.config, "v").query_codes == 3
