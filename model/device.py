"""Where the model runs: the device and its CPU threads (numerics: model/numerics.py)."""

from __future__ import annotations

import os

import torch
from threadpoolctl import threadpool_limits


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Explicit device, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_torch_threads(n: int | None = None) -> int:
    """n intra-op torch threads, and at most n in every BLAS/OpenMP pool loaded (None: every core
    this process may use); returns the number set.
    Where other busy processes share the cores, 1 can be much faster: threads spinning against
    them made small calls ~30x slower on 2 shared cores (the demo sets 1 for that reason)."""
    n = n or available_cores()
    torch.set_num_threads(n)
    # numpy's BLAS and faiss's OpenMP keep pools of their own (a thread per core): the same cap,
    # on every such library loaded by now
    threadpool_limits(limits=n)
    return n
