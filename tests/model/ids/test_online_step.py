"""One online step on ID rows: the loss is the served (gated) term's cross-entropy, and its
gradients reach the rows through the gate too."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from model.ids.hybrid import Fusion
from model.ids.online import batch_row_step, freeze, row_step
from model.ids.sasrec import SASRec, SASRecOptions


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    tower = freeze(SASRec([f"i{k}" for k in range(12)], SASRecOptions(dim=8, max_len=6)))
    fusion = Fusion(8)
    with torch.no_grad():
        fusion.gate.weight.normal_()  # a gate that reads the row (the fitted ones do)
        fusion.log_scale.fill_(1.5)
    rng = np.random.default_rng(seed)
    return tower, freeze(fusion), rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(7, 8)).astype(np.float32)


def test_served_loss_is_the_gated_terms_cross_entropy():
    tower, fusion, hist, cand = _setup()
    step = row_step(tower, fusion, hist, cand)
    c = torch.from_numpy(cand).requires_grad_()
    pad = torch.zeros(2, 8)
    h = tower.forward_rows(torch.cat([pad, torch.from_numpy(hist)])[None],
                           (torch.arange(6) >= 2)[None])[0, -1]
    loss = F.cross_entropy(((c @ h) * fusion.gates(c))[None], torch.zeros(1, dtype=torch.long))
    loss.backward()
    assert abs(step.loss - loss.item()) < 1e-5
    np.testing.assert_allclose(step.candidates, c.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_served_and_bare_steps_differ_and_a_served_step_raises_the_engaged_items_served_score():
    tower, fusion, hist, cand = _setup(1)
    bare, served = row_step(tower, None, hist, cand), row_step(tower, fusion, hist, cand)
    assert not np.allclose(bare.candidates, served.candidates)

    def served_margin(c: np.ndarray) -> float:
        t = torch.from_numpy(c)
        pad = torch.zeros(2, 8)
        h = tower.forward_rows(torch.cat([pad, torch.from_numpy(hist)])[None], (torch.arange(6) >= 2)[None])[0, -1]
        s = ((t @ h) * fusion.gates(t)).detach().numpy()
        return float(s[0] - s[1:].max())

    moved = cand - 0.05 * served.candidates
    assert served_margin(moved) > served_margin(cand)


def test_a_batch_step_is_the_sum_of_its_engagements_single_steps():
    """One forward and backward over a block equals each engagement's own step on the rows as
    the block found them: the same losses, the candidates' gradients summed, each history's own;
    histories of different lengths (the short ones' padding folded) and a masked candidate."""
    tower, gate, _, cand = _setup(2)
    rng = np.random.default_rng(2)
    hists = [rng.normal(size=(n, 8)).astype(np.float32) for n in (1, 4, 6)]
    rows, real = np.zeros((3, 6, 8), np.float32), np.zeros((3, 6), bool)
    for b, h in enumerate(hists):
        rows[b, 6 - len(h):], real[b, 6 - len(h):] = h, True
    labels, allowed = np.array([2, 0, 5]), np.ones((3, 7), bool)
    allowed[1, 6] = False  # another user's hard negative
    step = batch_row_step(tower, gate, rows, real, cand, labels, allowed)
    grads, squares = np.zeros_like(cand), np.zeros_like(cand)
    for b, h in enumerate(hists):
        seen = [labels[b], *(j for j in range(7) if j != labels[b] and allowed[b, j])]
        one = row_step(tower, gate, h, cand[seen])
        assert abs(one.loss - step.losses[b]) < 1e-5
        np.testing.assert_allclose(step.history[b][real[b]], one.history, rtol=1e-4, atol=1e-6)
        grads[seen] += one.candidates
        squares[seen] += one.candidates ** 2
    np.testing.assert_allclose(step.candidates, grads, rtol=1e-4, atol=1e-6)
    # what the engagements' steps one by one would add to Adagrad's accumulators, not grads ** 2
    np.testing.assert_allclose(step.candidate_squares, squares, rtol=1e-4, atol=1e-7)
    assert (grads ** 2 > squares * 1.5).any()


def test_the_last_state_with_folded_padding_equals_the_padded_forward():
    torch.manual_seed(3)
    tower = freeze(SASRec([], SASRecOptions(dim=8, max_len=50)))
    rng = np.random.default_rng(3)
    for lengths in (np.array([1, 3, 7, 12]), np.array([50, 2]), np.array([49, 1])):  # folded, none, one slot
        real = torch.from_numpy(np.arange(50)[None, :] >= 50 - lengths[:, None])
        rows = torch.from_numpy(rng.normal(size=(len(lengths), 50, 8)).astype(np.float32)) * real[..., None]
        want = tower.forward_rows(rows, real)[:, -1]
        np.testing.assert_allclose(tower.forward_last(rows, real).detach(), want.detach(), atol=1e-5)
