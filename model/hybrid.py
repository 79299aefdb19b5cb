"""The hybrid score: EmbSum's content score plus a gated ID score (issue 12).

    s(u, i) = s_content(u, i) + g_i * <h_u, e_i>,   g_i = scale * sigmoid(w . e_i + b) * present_i

e_i is item i's row in the ID memory (collisionless, admitted after min_count occurrences),
h_u a causal self-attention summary of the user's recent ID rows (the SASRec tower in
model/sasrec.py). The ID term is additive rather than an extra poly code: an extra code would
enter the poly scorer's softmax and shift every score, while an additive term multiplied by a
gate that is exactly 0 for an item without a row (new, filtered, expired, cold) leaves that
item's score bit-for-bit the content-only score. The gate itself reads the row, so a rarely
trained row can learn to speak softly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class HybridConfig:
    """The ID half of a hybrid checkpoint (stored in hybrid.json next to the EmbSum config)."""

    min_count: int = 1  # an item gets an ID row after this many train engagements (admission)
    # fusion fit: share of targets scored as if they had no ID row, so warm items' ID scores
    # stay comparable with content-only scores of new items (DropoutNet's trick)
    row_dropout: float = 0.2
    fusion_epochs: int = 60  # full-batch epochs of the gate fit on held-in positions
    fusion_lr: float = 0.05
    # where the gate is fitted: 0 = the valid split (the tower then trains on all of train, as the
    # SASRec baseline does); N > 0 = each user's last N train engagements, cut from the tower's data
    fusion_positions: int = 0
    fusion_sample: int = 0  # fit the gate on at most this many held-in positions (seeded; 0 = all)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> HybridConfig:
        """Build from a dict, ignoring unknown keys."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


class Fusion(nn.Module):
    """Per-item gate over the ID row and the additive ID term."""

    def __init__(self, id_dim: int):
        super().__init__()
        self.gate = nn.Linear(id_dim, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.log_scale = nn.Parameter(torch.zeros(()))

    def gates(self, rows: torch.Tensor) -> torch.Tensor:
        """rows e_i (C, k) -> g_i (C,) before the presence mask."""
        return self.log_scale.exp() * torch.sigmoid(self.gate(rows).squeeze(-1))

    def forward(self, content: torch.Tensor, users: torch.Tensor, rows: torch.Tensor,
                present: torch.Tensor) -> torch.Tensor:
        """content (U, C), users h_u (U, k), rows e_i (C, k), present (C,) or (U, C) bool -> (U, C)."""
        return content + self.id_term(users, rows, present)

    def id_term(self, users: torch.Tensor, rows: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """g_i * <h_u, e_i> (U, C); exactly 0 where present is False."""
        term = (users @ rows.T) * self.gates(rows)[None, :]
        return torch.where(present, term, torch.zeros_like(term))
