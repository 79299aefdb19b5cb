"""Seeded synthetic data shared by tests and benchmarks: clustered vectors, typical user states."""

from __future__ import annotations

import numpy as np

from .seen_items import EarlierItems
from .user_state import UserState, session_content_key


class ClusteredVectors:
    """Unit vectors around n_clusters random topic centres, like sentence embeddings.

    noise=1.0 puts two points of one topic at cosine ~0.5. Uniform random 384-d vectors have
    no neighbourhood structure, so no IVF index reaches high recall on them cheaply.
    """

    def __init__(
        self, dim: int = 384, n_clusters: int = 1000, noise: float = 1.0, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        self.dim, self.noise, self.seed = dim, noise, seed

    def sample(self, n: int, seed: int) -> np.ndarray:
        """n vectors [n, dim] float32; the same seed gives the same vectors."""
        rng = np.random.default_rng((self.seed, seed))
        out = np.empty((n, self.dim), np.float32)
        for start in range(0, n, 100_000):  # chunks keep the temporaries small
            m = min(100_000, n - start)
            pts = self.centres[rng.integers(0, len(self.centres), m)]
            pts += rng.standard_normal((m, self.dim), dtype=np.float32) * (
                self.noise / np.sqrt(self.dim)
            )
            out[start : start + m] = pts / np.linalg.norm(pts, axis=1, keepdims=True)
        return out



class FittedVectors:
    """A Gaussian mixture fitted to real embeddings, to sample more of them than were encoded.

    k-means (spherical: on the directions) splits the sample into clusters; each cluster keeps
    its share, its mean, its top `rank` principal axes with their variances and one isotropic
    variance for the rest, so samples keep the real norms, anisotropy and cluster overlap
    (not the fine structure below `rank` axes); each sample is rescaled to a norm drawn from its
    cluster's real norms, which rank inner-product neighbours as much as the directions do.
    Fit on n rows costs O(iterations x n x clusters x d).
    """

    def __init__(self, weights: np.ndarray, means: np.ndarray, axes: np.ndarray, scales: np.ndarray,
                 residual: np.ndarray, norms: np.ndarray, seed: int = 0) -> None:
        self.weights, self.means, self.axes = weights, means, axes  # (K,), (K, d), (K, r, d)
        self.scales, self.residual = scales, residual  # (K, r) std along the axes, (K,) std of the rest
        self.norms = norms  # (K, q) quantiles of the cluster's real norms: samples take these
        self.dim, self.seed = means.shape[1], seed

    @classmethod
    def fit(cls, x: np.ndarray, clusters: int = 256, rank: int = 32, iterations: int = 8,
            seed: int = 0) -> FittedVectors:
        """Fit to x [n, d] (n >= 4 x clusters)."""
        x = np.asarray(x, np.float32)
        assign = _spherical_kmeans(x, clusters, iterations, np.random.default_rng(seed))
        k, d = clusters, x.shape[1]
        weights, means = np.zeros(k), np.zeros((k, d), np.float32)
        axes, scales = np.zeros((k, rank, d), np.float32), np.zeros((k, rank), np.float32)
        residual, norms = np.zeros(k, np.float32), np.zeros((k, 33), np.float32)
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(k + 1))
        for c in range(k):
            rows = x[order[bounds[c]:bounds[c + 1]]]
            weights[c] = len(rows)
            if not len(rows):
                continue
            means[c] = rows.mean(0)
            norms[c] = np.quantile(np.linalg.norm(rows, axis=1), np.linspace(0, 1, 33))
            _, sv, vt = np.linalg.svd(rows - means[c], full_matrices=False)
            var = sv**2 / max(len(rows) - 1, 1)
            r = min(rank, len(var))
            axes[c, :r], scales[c, :r] = vt[:r], np.sqrt(var[:r])
            residual[c] = np.sqrt(var[r:].sum() / max(d - r, 1))
        return cls(weights / weights.sum(), means, axes, scales, residual, norms, seed)

    def sample(self, n: int, stream: int) -> np.ndarray:
        """n vectors [n, d] float32; the same stream gives the same vectors."""
        rng = np.random.default_rng((self.seed, stream))
        out = np.empty((n, self.dim), np.float32)
        for start in range(0, n, 65_536):  # chunks keep the temporaries small
            m = min(65_536, n - start)
            comp = rng.choice(len(self.weights), m, p=self.weights)
            z = rng.standard_normal((m, self.scales.shape[1]), dtype=np.float32) * self.scales[comp]
            block = np.empty((m, self.dim), np.float32)
            order = np.argsort(comp, kind="stable")
            bounds = np.searchsorted(comp[order], np.arange(len(self.weights) + 1))
            for c in np.flatnonzero(np.diff(bounds)):  # one matmul per cluster
                rows = order[bounds[c]:bounds[c + 1]]
                block[rows] = self.means[c] + z[rows] @ self.axes[c]
            block += rng.standard_normal((m, self.dim), dtype=np.float32) * self.residual[comp, None]
            q = rng.random(m) * (self.norms.shape[1] - 1)  # a norm between the cluster's quantiles
            lo = np.floor(q).astype(np.int64)
            hi = np.minimum(lo + 1, self.norms.shape[1] - 1)
            norm = self.norms[comp, lo] + (q - lo) * (self.norms[comp, hi] - self.norms[comp, lo])
            out[start:start + m] = block * (norm / np.linalg.norm(block, axis=1))[:, None]
        return out


def _spherical_kmeans(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Cluster of each row of x by cosine k-means (Lloyd's, k random rows to start)."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    centres = unit[rng.choice(len(x), k, replace=False)]
    for _ in range(iterations):
        assign = np.argmax(unit @ centres.T, axis=1)
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(k + 1))
        sums = np.zeros_like(centres)
        for c in np.flatnonzero(np.diff(bounds)):
            sums[c] = unit[order[bounds[c]:bounds[c + 1]]].sum(0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centres = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centres)
    return np.argmax(unit @ centres.T, axis=1)


def typical_user_state(
    user_id: str = "u1",
    n_items: int = 60,
    n_sessions: int = 8,
    dim: int = 384,
    seed: int = 0,
    n_earlier: int = 0,
) -> UserState:
    """A user with an n_items history in n_sessions sessions, cached embeddings, a summary and
    its global embedding, and n_earlier items trimmed from the history before."""
    rng = np.random.default_rng(seed)
    items = [f"item-{int(i)}" for i in rng.integers(0, 100_000, n_items)]
    starts = np.linspace(0, n_items, n_sessions, endpoint=False).astype(np.uint32)
    state = UserState(
        user_id=user_id,
        item_ids=items,
        timestamps=np.sort(rng.uniform(1.6e9, 1.7e9, n_items)),
        kinds=rng.integers(0, 5, n_items).astype(np.uint8),
        session_starts=starts,
        session_embeddings=rng.standard_normal((n_sessions, dim)).astype(np.float16),
        global_embedding=rng.standard_normal(dim).astype(np.float16),
        summary="Likes science fiction and long-form essays about cities.",
        total_events=n_items + 5,
        events_since_summary=3,
        last_seen=1.7e9,
        version=7,
        earlier_items=EarlierItems.of([f"item-{100_000 + i}" for i in range(n_earlier)]),
    )
    keys = [session_content_key(state.session_item_ids(i)) for i in range(n_sessions)]
    state.session_keys = np.array(keys, np.uint64)
    return state
