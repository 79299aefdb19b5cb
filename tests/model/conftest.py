"""Small, fast model fixtures shared by the model tests."""

from __future__ import annotations

import pytest
import torch

from model.config import EmbSumConfig, tiny_t5_config
from model.inference import EmbSumInference


def small_config(**kw) -> EmbSumConfig:
    base = dict(m=4, n=2, max_session_tokens=24, max_item_tokens=16, summary_max_tokens=8)
    base.update(kw)
    return EmbSumConfig(**base)


@pytest.fixture(scope="session")
def minilm_inf() -> EmbSumInference:
    torch.manual_seed(0)
    return EmbSumInference.pretrained(small_config(), device="cpu")


@pytest.fixture(scope="session")
def t5_inf() -> EmbSumInference:
    torch.manual_seed(0)
    return EmbSumInference.pretrained(small_config(backbone="t5", t5_config=tiny_t5_config()), device="cpu")
