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
