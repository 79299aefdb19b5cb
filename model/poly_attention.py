"""Poly-attention (UPE and CPE share this one module) and the EmbSum poly scorer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PolyAttention(nn.Module):
    """alpha_a = softmax(c_a tanh(Z W_f)^T); A = stack(alpha_a Z): k codes over L inputs."""

    def __init__(self, dim: int, num_codes: int):
        super().__init__()
        self.codes = nn.Parameter(torch.randn(num_codes, dim) * dim**-0.5)  # (k, d)
        self.proj = nn.Linear(dim, dim, bias=False)  # W_f

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, L, d), mask (B, L) bool (True = real) -> A (B, k, d)."""
        keys = torch.tanh(self.proj(z))  # (B, L, d)
        logits = torch.einsum("kd,bld->bkl", self.codes.to(keys.dtype), keys)  # (B, k, L)
        if mask is not None:
            # -inf gives exact zero weight, so padding cannot change the result
            logits = logits.masked_fill(~mask[:, None, :], float("-inf"))
        alpha = logits.float().softmax(dim=-1).to(z.dtype)  # (B, k, L)
        return alpha @ z  # (B, k, d)


class PolyScorer(nn.Module):
    """s = softmax(flatten(A gelu(B W_s)^T)) . flatten(A B^T)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim, bias=False)  # W_s

    def item_keys(self, b: torch.Tensor) -> torch.Tensor:
        """gelu(B W_s): user-independent, so full ranking can precompute it. (..., n, d)."""
        return F.gelu(self.proj(b))

    def forward(self, a: torch.Tensor, b: torch.Tensor,
                b_keys: torch.Tensor | None = None) -> torch.Tensor:
        """a (U, m, d); b (U, C, n, d) per user or (C, n, d) shared -> scores (U, C)."""
        b_keys = self.item_keys(b) if b_keys is None else b_keys
        eq = "umd,ucnd->ucmn" if b.dim() == 4 else "umd,cnd->ucmn"
        k = torch.einsum(eq, a, b).flatten(2)  # (U, C, m*n)
        w = torch.einsum(eq, a, b_keys).flatten(2).float().softmax(dim=-1)  # (U, C, m*n)
        return (w * k.float()).sum(-1)  # (U, C)
