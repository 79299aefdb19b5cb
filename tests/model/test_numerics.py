"""Inference numerics (model/numerics.py): which mode `auto` picks from the CPU's features, what
int8 changes in the model, and that fp32 stays exact whatever is batched together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import model.numerics as numerics
import model.precision as precision
from model.inference import EmbSumInference
from tests.model.conftest import small_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TEXTS = ["Toy Story (1995) | Animation", "Heat (1995) | Action, Crime", "Emma (1996) | Drama, Romance"]


@pytest.mark.parametrize("bf16, amx, int8, want", [(True, True, True, "bf16"), (True, False, True, "int8"),
                                                   (False, False, True, "int8"), (False, False, False, "fp32")])
def test_auto_follows_the_cpu_features(monkeypatch, bf16, amx, int8, want) -> None:
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: bf16)
    monkeypatch.setattr(numerics, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(numerics, "int8_supported", lambda: int8)
    assert numerics.resolve_mode("auto", CPU) == want
    assert numerics.resolve_mode("auto", CUDA) == "bf16"
    assert numerics.resolve_mode("fp32", CPU) == "fp32"  # an explicit mode is kept


def test_bad_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown inference mode"):
        numerics.resolve_mode("fp8", CPU)
    with pytest.raises(ValueError, match="CPU only"):
        numerics.resolve_mode("int8", CUDA)


@pytest.fixture(scope="module")
def pair() -> tuple[EmbSumInference, EmbSumInference]:
    def make(mode: str) -> EmbSumInference:
        torch.manual_seed(0)
        return EmbSumInference.pretrained(small_config(), device="cpu", mode=mode)

    return make("fp32"), make("int8")


@pytest.mark.skipif(not numerics.int8_supported(), reason="no quantised-matmul engine in this torch build")
def test_int8_quantises_every_linear_layer_and_stays_close(pair) -> None:
    exact, quant = pair
    assert quant.mode == "int8" and exact.mode == "fp32"
    assert not any(type(m) is torch.nn.Linear for m in quant.model.modules())
    assert any(type(m) is torch.nn.Linear for m in exact.model.modules())
    a = np.stack([s.embedding for s in exact.encode_sessions(TEXTS)])
    b = np.stack([s.embedding for s in quant.encode_sessions(TEXTS)])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.9, cos  # close, not equal: that is why parity pins fp32
    assert not np.allclose(a, b, atol=1e-6)


def test_fp32_does_not_depend_on_what_is_batched_together(pair) -> None:
    exact, _ = pair
    alone = exact.encode_sessions(TEXTS[:1])[0].embedding
    batched = exact.encode_sessions(TEXTS)[0].embedding
    np.testing.assert_allclose(alone, batched, atol=1e-5)

