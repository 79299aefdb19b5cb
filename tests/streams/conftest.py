"""Factories for the streams tests: a tiny EmbSum, its checkpoint, engines and synthetic events."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from model.config import EmbSumConfig, tiny_t5_config
from model.inference import EmbSumInference
from store import BruteForceIndex
from streams.engine.config import EngineConfig
from streams.engine.engine import Engine
from tests.fixtures.synthetic_data import make_engagements, make_items, write_prepared_dir


def tiny_config() -> EmbSumConfig:
    """A random tiny T5 EmbSum: loads in well under a second, summaries of <= 8 tokens."""
    return EmbSumConfig(backbone="t5", t5_config=tiny_t5_config(), m=4, n=2, max_session_tokens=32,
                        max_item_tokens=16, summary_max_tokens=8, session_gap_s=3600.0,
                        session_max_items=4, max_sessions=3, max_history=20)


@pytest.fixture(scope="session")
def tiny_model() -> EmbSumInference:
    torch.manual_seed(0)
    return EmbSumInference.pretrained(tiny_config(), device="cpu")


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tmp_path_factory) -> Path:
    """The same tiny model saved as a checkpoint, for worker subprocesses."""
    from model.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(path, tiny_model.model, tiny_model.tokenizer, {"version": "tiny-test"})
    return path


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
        eng = Engine.in_memory(tiny_model, cfg, index=index or BruteForceIndex(tiny_model.dim))
        if items:
            eng.upsert_items(catalogue)
        return eng

    return make


@pytest.fixture
def prepared(tmp_path) -> Path:
    """A prepared data dir: 30 items, 8 users with 6 engagements each."""
    return write_prepared_dir(tmp_path / "data", n_items=30, n_users=8, per_user=6, seed=3)
