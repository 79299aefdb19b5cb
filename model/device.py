"""Where the model runs: device choice and the autocast that goes with it."""

from __future__ import annotations

import contextlib

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
