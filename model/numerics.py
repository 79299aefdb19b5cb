"""How inference computes: exact float32, int8 dynamic quantisation of the linear layers, or bf16
autocast. `auto` picks from the device and the CPU's features at run time (machines differ: one
had AVX512-BF16/AMX, one AVX512-BF16 without AMX, another no AVX-512), using what
bench/bench_inference.py measured.

int8 quantises activations per batch (dynamic ranges), so results depend slightly on what is
batched together; parity tests and recomputes therefore pin `fp32`, which is exact.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import torch
from torch import nn

from model.config import INFERENCE_MODES as MODES
from model.precision import cpu_has_amx, half_dtype, half_is_native

logger = logging.getLogger(__name__)

def int8_supported() -> bool:
    """True where a quantised-matmul engine (fbgemm on x86, qnnpack on ARM) is built in."""
    return any(e in torch.backends.quantized.supported_engines for e in ("fbgemm", "x86", "qnnpack"))


def resolve_mode(mode: str, device: torch.device) -> str:
    """The concrete mode for `mode` on `device` (auto: bf16 on CUDA and on CPUs with AMX and native
    bf16, else int8 where supported, else fp32). AVX512-BF16 alone is not enough: on an AMD EPYC
    with it and no AMX, the engine's encoders ran 1.8x slower in bf16 than in int8 (one thread)."""
    if mode not in MODES:
        raise ValueError(f"unknown inference mode {mode!r} (one of {', '.join(MODES)})")
    if mode == "int8" and device.type != "cpu":
        raise ValueError("int8 dynamic quantisation runs on CPU only (use bf16 or fp32 on CUDA)")
    if mode != "auto":
        return mode
    if device.type == "cuda" or (half_is_native(device) and cpu_has_amx()):
        return "bf16"
    return "int8" if device.type == "cpu" and int8_supported() else "fp32"


def prepare(model: nn.Module, mode: str) -> nn.Module:
    """The model as `mode` runs it: int8 swaps every nn.Linear for a dynamically quantised one."""
    if mode != "int8":
        return model
    with warnings.catch_warnings():  # torch.ao's eager quantisation warns it will move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def autocast(device: torch.device, mode: str):
    """The autocast context of `mode`: bf16 (fp16 on CUDA without bf16) or none."""
    if mode != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=half_dtype(device))
