"""Poly-attention and the poly scorer against a hand-computed small example."""

from __future__ import annotations

import numpy as np
import torch

from model.poly_attention import PolyAttention, PolyScorer


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _gelu(x):
    from math import erf, sqrt
    return np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))(x)


def test_poly_attention_matches_formula():
    z = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # (L=3, d=2)
    codes = np.array([[1.0, -1.0], [0.5, 2.0]])  # (k=2, d)
    wf = np.array([[0.5, 0.0], [1.0, -1.0]])  # Z @ W_f
    pa = PolyAttention(2, 2)
    with torch.no_grad():
        pa.codes.copy_(torch.tensor(codes))
        pa.proj.weight.copy_(torch.tensor(wf.T))  # nn.Linear computes x @ W^T
    got = pa(torch.tensor(z, dtype=torch.float32)[None])[0].detach().numpy()
    keys = np.tanh(z @ wf)
    want = np.stack([_softmax(c @ keys.T) @ z for c in codes])
    assert np.allclose(got, want, atol=1e-6)
    # hand check of the first weight vector: logits = c_0 . tanh(z_l W_f)
    assert not np.allclose(got[0], got[1])


def test_poly_attention_mask_ignores_padding():
    pa = PolyAttention(4, 3)
    z = torch.randn(1, 5, 4)
    mask = torch.tensor([[True, True, True, False, False]])
    padded = pa(torch.cat([z[:, :3], torch.randn(1, 2, 4) * 100], 1), mask)
    assert torch.allclose(padded, pa(z[:, :3]), atol=1e-6)


def test_scorer_matches_formula_and_shared_items():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 4))  # (U, m, d)
    b = rng.normal(size=(5, 2, 4))  # (C, n, d)
    ws = rng.normal(size=(4, 4))
    sc = PolyScorer(4)
    with torch.no_grad():
        sc.proj.weight.copy_(torch.tensor(ws.T))
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    got = sc(ta, tb).detach().numpy()
    want = np.zeros((2, 5))
    for u in range(2):
        for c in range(5):
            k = (a[u] @ b[c].T).ravel()
            w = _softmax((a[u] @ _gelu(b[c] @ ws).T).ravel())
            want[u, c] = w @ k
    assert np.allclose(got, want, atol=1e-4)
    per_user = sc(ta, tb[None].expand(2, -1, -1, -1)).detach().numpy()
    assert np.allclose(per_user, got, atol=1e-6)
