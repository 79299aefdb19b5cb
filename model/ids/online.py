"""Online learning of ID rows (Monolith's sparse side): steps through the frozen ID tower and the
hybrid's frozen gate, one engagement (row_step) or a block of them in one pass (batch_row_step).

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


@dataclass
class BatchStep:
    """The losses of a batch of engagements and the gradients of the rows they read."""

    losses: np.ndarray  # (B,) each engagement's cross-entropy
    history: np.ndarray  # (B, max_len, d) gradients of the left-padded history rows (zeros on padding)
    candidates: np.ndarray  # (C, d) gradients of the shared candidate rows, summed over the batch
    # (C, d) squares of each engagement's candidate gradient, summed over the batch: what B steps
    # one by one would add to Adagrad's accumulators (the square of the sum adds up to B times more)
    candidate_squares: np.ndarray


def batch_row_step(tower: SASRec, gate: Fusion | None, history: np.ndarray, real: np.ndarray,
                   candidates: np.ndarray, labels: np.ndarray, allowed: np.ndarray | None = None,
                   log_q: np.ndarray | None = None) -> BatchStep:
    """row_step for B engagements in one forward and backward: left-padded history rows (B,
    max_len, d) with their mask (B, max_len), one candidate table (C, d) they share, each
    engagement's class labels (B,) and the candidates it may see allowed (B, C) (None: all).
    The loss summed over the batch; log_q (C,) as in row_step."""
    hist = torch.from_numpy(np.ascontiguousarray(history, np.float32)).requires_grad_()
    cand = torch.from_numpy(np.ascontiguousarray(candidates, np.float32)).requires_grad_()
    h = _last_states(tower, hist, torch.from_numpy(np.asarray(real, bool)))  # (B, d)
    gates = torch.ones(len(cand)) if gate is None else gate.gates(cand)  # (C,)
    scores = h @ cand.T  # (B, C)
    logits = scores * gates[None, :]
    if log_q is not None:
        logits = logits - torch.from_numpy(np.asarray(log_q, np.float32))[None, :]
    if allowed is not None:
        logits = logits.masked_fill(~torch.from_numpy(np.asarray(allowed, bool)), float("-inf"))
    losses = F.cross_entropy(logits, torch.from_numpy(np.asarray(labels, np.int64)), reduction="none")
    losses.sum().backward(retain_graph=gate is not None)
    squares = _candidate_squares(logits.detach(), labels, h.detach(), scores.detach(), cand, gates)
    return BatchStep(losses.detach().numpy().copy(), hist.grad.numpy().copy(), cand.grad.numpy().copy(),
                     squares.numpy())


def _candidate_squares(logits: torch.Tensor, labels: np.ndarray, h: torch.Tensor, scores: torch.Tensor,
                       cand: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """(C, d) sum over b of engagement b's gradient on each candidate row, squared, in O(B C d)
    without the (B, C, d) gradients: d loss_b / d e_j = delta_bj (g_j h_b + s_bj grad g_j), with
    delta the softmax minus the one-hot label (0 where not allowed) and s_bj = <h_b, e_j>; the
    gate reads only its own row, so grad g_j is row j of the gradient of sum(gates)."""
    delta = torch.softmax(logits, dim=1)
    delta[torch.arange(len(labels)), torch.from_numpy(np.asarray(labels, np.int64))] -= 1.0
    d2 = delta * delta  # (B, C); 0 where not allowed (softmax of -inf)
    g = gates.detach()[:, None]  # (C, 1)
    out = g * g * (d2.T @ (h * h))
    if gates.requires_grad:
        dg = torch.autograd.grad(gates.sum(), cand)[0]  # (C, d)
        out = out + 2 * g * dg * ((d2 * scores).T @ h) + dg * dg * (d2 * scores * scores).sum(0)[:, None]
    return out.clamp_min(0.0)


def _last_states(tower: SASRec, rows: torch.Tensor, real: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """tower.forward_last over chunks of histories of similar length (B, d), in the input order:
    a chunk costs its longest history, so a few long ones do not pad every short one to max_len."""
    order = torch.argsort(real.sum(dim=1), stable=True)
    parts = [tower.forward_last(rows[at], real[at]) for at in torch.split(order, chunk)]
    return torch.cat(parts)[torch.argsort(order)]
