"""Online learning of ID rows (Monolith's sparse side): one step per engagement through the
frozen ID tower and the hybrid's frozen gate.

The engaged item is scored against negatives by the term the workers serve, g_i * <h_u, e_i>
(model/ids/hybrid.py; h_u is the tower's state after the user's earlier rows), with cross-entropy and
the engaged item as the class. Training the served term, not the tower's bare logits <h_u, e_i>,
is what makes online steps pay: the gate reads the row, so a step also moves how loudly an item's
ID term speaks, and the gate's scale sets the softmax temperature the rows are served at (on the
demo's held-out period, bare-logit steps left Recall@10 at the frozen model's, gated ones raised
it; README, "Online training"). The prior r_u is one constant per user and cancels in the softmax.
Gradients reach both the candidate rows (the output side) and the history rows (the input side);
tower and gate stay frozen, so workers and trainer agree on the term given the same rows.
A sampled softmax subtracts log Q_j from each logit, Q_j the expected count of row j among the
sampled candidates (the log-Q correction of Yi et al. 2019, "Sampling-bias-corrected neural
modeling"), so popular rows, drawn more often as negatives, are not pushed down for it; the
trainer's sampler (streams/trainer/negatives.py) says what Q is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.ids.hybrid import Fusion
from model.ids.sasrec import SASRec


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


def row_step(tower: SASRec, fusion: Fusion | None, history: np.ndarray, candidates: np.ndarray,
             log_q: np.ndarray | None = None) -> RowStep:
    """Cross-entropy of candidate 0 among candidates by the served ID term (fusion None: the bare
    tower logits), given the user's history rows (L, d), oldest first; gradients for both sets of
    rows. log_q (C,), when given, is subtracted from the logits (a sampled softmax's correction).
    Deterministic: eval mode, no sampling here."""
    hist = torch.from_numpy(np.asarray(history, np.float32)[-tower.opts.max_len:]).requires_grad_()
    cand = torch.from_numpy(np.asarray(candidates, np.float32)).requires_grad_()
    pad = torch.zeros(tower.opts.max_len - len(hist), tower.opts.dim)
    real = torch.arange(tower.opts.max_len) >= len(pad)
    h = tower.forward_rows(torch.cat([pad, hist])[None], real[None])[0, -1]
    logits = cand @ h if fusion is None else (cand @ h) * fusion.gates(cand)
    if log_q is not None:
        logits = logits - torch.from_numpy(np.asarray(log_q, np.float32))
    loss = F.cross_entropy(logits[None], torch.zeros(1, dtype=torch.long))
    loss.backward()
    g_hist = hist.grad if hist.grad is not None else torch.zeros_like(hist)
    return RowStep(float(loss.detach()), g_hist.numpy().copy(), cand.grad.numpy().copy())


def uniform_draws(population: int, n: int, seed: tuple[int, ...]) -> np.ndarray:
    """n indices in [0, population) drawn uniformly with replacement (O(n), whatever the
    population), seeded so a replay draws the same ones."""
    if n <= 0 or population <= 0:
        return np.zeros(0, np.int64)
    return np.random.default_rng(list(seed)).integers(0, population, size=n)
