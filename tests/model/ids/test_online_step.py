"""One online step on ID rows: the loss is the served (gated) term's cross-entropy, and its
gradients reach the rows through the gate too."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from model.ids.hybrid import Fusion
from model.ids.online import freeze, row_step
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
