"""Factory fixtures for store tests; KV tests run against every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from store.base import KVStore
from store.memory_backend import MemoryKV
from store.rocksdict_backend import RocksDictKV
from store.user_state import UserState, session_content_key


@pytest.fixture(params=["memory", "rocksdict"])
def kv_factory(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[[], KVStore]]:
    """Makes stores of one backend; rocksdict ones share a path so a reopen sees old data."""
    opened: list[KVStore] = []

    def make() -> KVStore:
        kv: KVStore = RocksDictKV(tmp_path / "kv") if request.param == "rocksdict" else MemoryKV()
        opened.append(kv)
        return kv

    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for kv in opened:
        try:
            kv.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


def make_user_state(
    user_id: str = "u1",
    n_items: int = 60,
    n_sessions: int = 8,
    m: int = 32,
    d: int = 384,
    seed: int = 0,
) -> UserState:
    """A typical user state: history, sessions with keys and embeddings, global, UPE."""
    rng = np.random.default_rng(seed)
    items = [f"item-{int(i)}" for i in rng.integers(0, 100_000, n_items)]
    starts = np.linspace(0, n_items, n_sessions, endpoint=False).astype(np.uint32)
    state = UserState(
        user_id=user_id,
        item_ids=items,
        timestamps=np.sort(rng.uniform(1.6e9, 1.7e9, n_items)),
        kinds=rng.integers(0, 5, n_items).astype(np.uint8),
        session_starts=starts,
        session_embeddings=rng.standard_normal((n_sessions, d)).astype(np.float16),
        global_embedding=rng.standard_normal(d).astype(np.float16),
        upe=rng.standard_normal((m, d)).astype(np.float16),
        summary="Likes science fiction and long-form essays about cities.",
        total_events=n_items + 5,
        events_since_summary=3,
        last_seen=1.7e9,
        version=7,
    )
    keys = [session_content_key(state.session_item_ids(i)) for i in range(n_sessions)]
    state.session_keys = np.array(keys, np.uint64)
    return state


@pytest.fixture
def user_state_factory() -> Callable[..., UserState]:
    return make_user_state
