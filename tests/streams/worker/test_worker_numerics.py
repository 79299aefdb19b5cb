"""The worker loads its checkpoint in the numerics its settings name (model/numerics.py)."""

from __future__ import annotations

import torch

from model.numerics import resolve_mode
from streams.worker.config import WorkerSettings
from streams.worker.runtime import load_model


def test_the_worker_loads_its_checkpoint_in_the_configured_numerics(tiny_checkpoint) -> None:
    exact, _ = load_model(WorkerSettings(checkpoint=tiny_checkpoint, device="cpu", inference="fp32"))
    assert exact.mode == "fp32"
    served, _ = load_model(WorkerSettings(checkpoint=tiny_checkpoint, device="cpu"))  # the default
    assert served.mode == resolve_mode("auto", torch.device("cpu"))
    assert (served.mode == "int8") == any(type(m) is not torch.nn.Linear and "Linear" in type(m).__name__
                                          for m in served.model.modules())
