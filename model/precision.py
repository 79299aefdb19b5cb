"""Training precision: which autocast dtype to use on a device, and a loss scaler when fp16 needs one.
The one bf16/fp16 rule (half_is_native, half_dtype) lives here; inference numerics read it too."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_bf16() -> bool:
    """True where oneDNN runs bf16 matmuls natively (AVX512-BF16 / AMX), so bf16 is a speed-up."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and (
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_amx() -> bool:
    """True where the CPU has AMX tiles (the matrix unit that makes bf16 inference beat int8)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training on device (None = float32 throughout).

    auto: bf16 on CUDA where supported (else fp16), bf16 on CPUs with native bf16, else fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 training needs a CUDA device (use bf16 or fp32 on CPU)")
        return torch.float16
    return half_dtype(device) if half_is_native(device) else None


def half_is_native(device: torch.device) -> bool:
    """True where half precision is a speed-up: CUDA, and CPUs with native bf16 (training and
    inference pick their `auto` from this one rule)."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())


def half_dtype(device: torch.device) -> torch.dtype:
    """The half-precision dtype on device: bf16, except fp16 on a CUDA GPU without bf16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def train_autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast context for a training forward pass."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler that is active only for fp16 (bf16 and fp32 have float32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
