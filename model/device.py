"""Where the model runs: device choice and the autocast that goes with it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Explicit device, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(device: torch.device):
    """bf16 (or fp16) autocast on CUDA; nothing on CPU, where float32 keeps parity exact."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def one_torch_thread(env: Mapping[str, str] | None = None) -> bool:
    """True on small machines (<= 4 CPUs) unless env (default os.environ) sets OMP_NUM_THREADS: on
    2 shared cores, intra-op threads spinning against other processes made small calls ~30x slower."""
    env = os.environ if env is None else env
    return "OMP_NUM_THREADS" not in env and (os.cpu_count() or 1) <= 4


def limit_torch_threads() -> None:
    """One torch thread in this process where one_torch_thread() says so."""
    if one_torch_thread():
        torch.set_num_threads(1)
