"""Online learning of ID rows (Monolith's sparse side): one step per engagement through the
frozen ID tower and the hybrid's frozen gate.

The engaged item is scored against negatives by the term the workers serve, g_i * <h_u, e_i>
(model/hybrid.py; h_u is the tower's state after the user's earlier rows), with cross-entropy and
the engaged item as the class. Training the served term, not the tower's bare logits <h_u, e_i>,
is what makes online steps pay: the gate reads the row, so a step also moves how loudly an item's
ID term speaks, and the gate's scale sets the softmax temperature the rows are served at (on the
demo's held-out period, bare-logit steps left Recall@10 at the frozen model's, gated ones raised
it; README, "Online training"). The prior r_u is one constant per user and cancels in the softmax.
Gradients reach both the candidate rows (the output side) and the history rows (the input side);
tower and gate stay frozen, so workers and trainer agree on the term given the same rows.
Negatives are drawn uniformly from the rows, so the sampled softmax needs no log-q correction (it
is a constant); impressions the user skipped are added as hard negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.hybrid import Fusion
from model.sasrec import SASRec


@dataclass
class RowStep:
    """The loss of one engagement and the gradients of the rows it read."""

    loss: float
    history: np.ndarray  # (L, d) gradients of the history rows used (the last max_len)
    candidates: np.ndarray  # (C, d) gradients of the candidate rows; row 0 is the engaged item


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """The module (tower or gate) in eval mode with no parameter gradients (steps touch rows only)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def row_step(tower: SASRec, gate: Fusion | None, history: np.ndarray, candidates: np.ndarray) -> RowStep:
    """Cross-entropy of candidate 0 among candidates by the served ID term (gate None: the bare
    tower logits), given the user's history rows (L, d), oldest first; gradients for both sets of
    rows. Deterministic: eval mode, no sampling here."""
    hist = torch.from_numpy(np.asarray(history, np.float32)[-tower.opts.max_len:]).requires_grad_()
    cand = torch.from_numpy(np.asarray(candidates, np.float32)).requires_grad_()
    pad = torch.zeros(tower.opts.max_len - len(hist), tower.opts.dim)
    real = torch.arange(tower.opts.max_len) >= len(pad)
    h = tower.forward_rows(torch.cat([pad, hist])[None], real[None])[0, -1]
    logits = cand @ h if gate is None else (cand @ h) * gate.gates(cand)
    loss = F.cross_entropy(logits[None], torch.zeros(1, dtype=torch.long))
    loss.backward()
    g_hist = hist.grad if hist.grad is not None else torch.zeros_like(hist)
    return RowStep(float(loss.detach()), g_hist.numpy().copy(), cand.grad.numpy().copy())


def sample_negatives(catalogue: list[str], exclude: set[str], n: int, seed: tuple[int, ...]) -> list[str]:
    """Up to n distinct ids drawn uniformly from catalogue, none in exclude; seeded per event
    (e.g. by partition and offset) so a replay draws the same ones."""
    if n <= 0 or not catalogue:
        return []
    rng = np.random.default_rng(list(seed))
    if len(catalogue) <= n + len(exclude):
        return [i for i in catalogue if i not in exclude][:n]
    out: dict[str, None] = {}
    for _ in range(4):  # a few rounds fill n almost always; never loops on a tiny catalogue
        for k in rng.choice(len(catalogue), size=n, replace=False).tolist():
            if catalogue[k] not in exclude:
                out[catalogue[k]] = None
        if len(out) >= n:
            break
    return list(out)[:n]
