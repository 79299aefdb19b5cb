"""Factory fixtures for store tests; KV tests run against every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from store.base import KVStore
from store.memory_backend import MemoryKV
from store.rocksdict_backend import RocksDictKV
from store.synthetic import typical_user_state
from store.user_state import UserState


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


@pytest.fixture
def user_state_factory() -> Callable[..., UserState]:
    """typical_user_state(user_id, n_items=60, n_sessions=8, m=32, dim=384, seed=0)."""
    return typical_user_state
