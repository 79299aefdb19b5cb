"""The hybrid score: EmbSum's content score plus a gated ID score (issue 12).

    s(u, i) = s_content(u, i) + g_i * <h_u, e_i>,   g_i = scale * sigmoid(w . e_i + b) * present_i

e_i is item i's row in the ID memory (collisionless, admitted after min_count occurrences),
h_u a causal self-attention summary of the user's recent ID rows (the SASRec tower in
model/ids/sasrec.py). The ID term is additive rather than an extra poly code: an extra code would
enter the poly scorer's softmax and shift every score, while an additive term multiplied by a
gate that is exactly 0 for an item without a row (new, filtered, expired, cold) leaves that
item's score bit-for-bit the content-only score. The gate itself reads the row, so a rarely
trained row can learn to speak softly.

Where "no row" sits on the ID scale is a choice: a softmax-trained tower leaves each user's ID
logits defined only up to a constant, so 0 is arbitrary. The prior (`prior_q`, chosen on valid by
model/training/hybrid_fit.py: tune_prior) subtracts from every present item's term the user's prior_q
quantile of ID terms over all rows, r_u; an item without a row then competes as if its ID term
were at that quantile, while its own score stays exactly the content-only score:

    s(u, i) = s_content(u, i) + present_i * (g_i * <h_u, e_i> - r_u)
"""

from __future__ import annotations

import torch
from torch import nn

from model.ids.options import HybridConfig as HybridConfig  # its home is options.py (no torch)


class Fusion(nn.Module):
    """Per-item gate over the ID row and the additive ID term."""

    def __init__(self, id_dim: int):
        super().__init__()
        self.gate = nn.Linear(id_dim, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("prior_q", torch.tensor(-1.0))  # < 0: no prior (r_u = 0)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], id_dim: int) -> Fusion:
        """The fitted gate of a hybrid checkpoint's tensors ("fusion.*"), in eval mode."""
        state = {k[len("fusion."):]: v for k, v in tensors.items() if k.startswith("fusion.")}
        state.setdefault("prior_q", torch.tensor(-1.0))  # checkpoints from before the prior
        fusion = cls(id_dim)
        fusion.load_state_dict(state)
        return fusion.eval()

    def reference(self, users: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | None:
        """r_u (U, 1): the prior_q quantile of each user's ID terms over `rows` (every row the
        model has); None without a prior."""
        if float(self.prior_q) < 0 or not len(rows):
            return None
        return self.reference_of_terms((users @ rows.T) * self.gates(rows)[None, :])

    def reference_of_terms(self, terms: torch.Tensor) -> torch.Tensor | None:
        """r_u (U, 1) from each user's gated ID terms over every row (U, R); None without a prior."""
        q = float(self.prior_q)
        if q < 0 or terms.shape[1] == 0:
            return None
        k = min(terms.shape[1], max(1, round(q * (terms.shape[1] - 1)) + 1))  # kthvalue: no size limit
        return terms.kthvalue(k, dim=1, keepdim=True).values

    def gates(self, rows: torch.Tensor) -> torch.Tensor:
        """rows e_i (C, k) -> g_i (C,) before the presence mask."""
        return self.log_scale.exp() * torch.sigmoid(self.gate(rows).squeeze(-1))

    def forward(self, content: torch.Tensor, users: torch.Tensor, rows: torch.Tensor,
                present: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """content (U, C), users h_u (U, k), rows e_i (C, k), present (C,) or (U, C) bool,
        reference r_u (U, 1) or None -> (U, C)."""
        return content + self.id_term(users, rows, present, reference)

    def id_term(self, users: torch.Tensor, rows: torch.Tensor, present: torch.Tensor,
                reference: torch.Tensor | None = None) -> torch.Tensor:
        """g_i * <h_u, e_i> - r_u (U, C); exactly 0 where present is False."""
        term = (users @ rows.T) * self.gates(rows)[None, :]
        if reference is not None:
            term = term - reference
        return torch.where(present, term, torch.zeros_like(term))
