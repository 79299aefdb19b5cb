"""Thread caps: torch's intra-op pool and every native BLAS/OpenMP pool get the same limit."""

from __future__ import annotations

import faiss  # noqa: F401  (its OpenMP pool is loaded before the cap, as in the worker)
import numpy as np  # noqa: F401
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from model.device import available_cores, set_torch_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    with threadpool_limits(limits=None):  # threadpoolctl restores the pools on exit
        yield
    torch.set_num_threads(before)


def test_one_thread_caps_torch_and_every_native_pool(restore_threads):
    assert set_torch_threads(1) == 1
    assert torch.get_num_threads() == 1
    pools = threadpool_info()
    assert pools, "numpy's BLAS at least is loaded"
    assert {p["num_threads"] for p in pools} == {1}, pools


def test_none_means_every_core_this_process_may_use(restore_threads):
    assert set_torch_threads(None) == available_cores() == torch.get_num_threads()
