"""Factories for the streams tests: a tiny EmbSum, its checkpoint, engines and synthetic events."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from model.inference import EmbSumInference
from model.training.tiny import tiny_inference, write_tiny_checkpoint
from store import BruteForceIndex
from streams.data.synthetic import make_engagements, make_items, write_prepared_dir
from streams.engine.config import EngineConfig
from streams.engine.engine import Engine


@pytest.fixture(scope="session")
def tiny_model() -> EmbSumInference:
    """The tiny EmbSum of model/training/tiny.py (seed 0)."""
    return tiny_inference()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tmp_path_factory) -> Path:
    """The same tiny model saved as a checkpoint, for worker subprocesses."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny-test", tiny_model)


@pytest.fixture
def catalogue() -> list[dict]:
    return make_items(30, random.Random(0))


@pytest.fixture
def events(catalogue) -> list[dict]:
    """9 clicks for each of 6 users, event-time ordered, gaps that make sessions."""
    return make_engagements(catalogue, 6, 9, random.Random(1))


@pytest.fixture
def engine_factory(tiny_model, catalogue):
    """engine_factory(**config) -> an in-memory Engine with the catalogue already loaded."""

    def make(index=None, items=True, **overrides) -> Engine:
        cfg = EngineConfig.from_model(tiny_model.config, **{"top_k": 5, "candidates": 30, **overrides})
        index = index if index is not None else BruteForceIndex(tiny_model.dim)  # an empty one is falsy
        eng = Engine.in_memory(tiny_model, cfg, index=index)
        if items:
            eng.upsert_items(catalogue)
        return eng

    return make


@pytest.fixture
def prepared(tmp_path) -> Path:
    """A prepared data dir: 30 items, 8 users with 6 engagements each."""
    return write_prepared_dir(tmp_path / "data", n_items=30, n_users=8, per_user=6, seed=3)
