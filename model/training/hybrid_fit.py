"""Fit the hybrid's gate on held-in positions: frozen content scores + the ID tower's vectors.

The ID tower is trained on each user's train engagements minus the last `fusion_positions`;
those held-in positions (never a target of the tower, never valid or test) are where the gate
learns how far to trust an ID row against the content score. Fitting it on positions the tower
trained on would teach the gate to over-trust memorised rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from model.ids.hybrid import Fusion, HybridConfig

logger = logging.getLogger(__name__)


@dataclass
class HeldIn:
    """One held-in position: the user's engagements before it and the item engaged at it."""

    key: str
    history: list[dict[str, Any]]
    target: str


def split_held_in(user_events: dict[str, list[dict[str, Any]]], positions: int,
                  cold: frozenset[str] = frozenset()) -> tuple[list[dict[str, Any]], list[HeldIn]]:
    """(rows the tower trains on, held-in positions): each user's last `positions` engagements
    are cut from the tower's rows and become positions (a cold item is never a target)."""
    fit_rows, held = [], []
    for user, events in user_events.items():
        cut = positions if len(events) > positions + 1 else 0
        fit_rows += events[:len(events) - cut]
        for t in range(len(events) - cut, len(events)):
            if events[t]["item_id"] not in cold:
                held.append(HeldIn(f"{user}@{t}", events[:t], str(events[t]["item_id"])))
    fit_rows.sort(key=lambda e: float(e["ts"]))
    return fit_rows, held


def valid_positions(train: dict[str, list[dict[str, Any]]], valid: list[dict[str, Any]],
                    cold: frozenset[str] = frozenset()) -> list[HeldIn]:
    """The valid split as fit positions (fusion_positions = 0): the tower then trains on every
    train engagement, as the SASRec baseline does, and the gate is fitted where models are selected."""
    return [HeldIn(f"{e['user_id']}@valid", train.get(str(e["user_id"]), []), str(e["item_id"]))
            for e in valid if str(e["item_id"]) not in cold and train.get(str(e["user_id"]))]


def recall_at(scores: torch.Tensor, data: FusionData, k: int = 10) -> float:
    """Full-catalogue Recall@k of scores (P, N) at the fit positions (history items excluded)."""
    top = scores.masked_fill(data.seen, float("-inf")).topk(k, dim=1).indices
    return float((top == data.targets[:, None]).any(1).float().mean())


def tune_gate(fusion: Fusion, data: FusionData, factors=(0.5, 1, 2, 4, 8, 16, 32)) -> dict[str, float]:
    """Cross-entropy fits the gate but under-weights the ID term for top-k ranking (it pays for
    confident misses), and its per-item shape can hurt too; so the fitted gate and a flat one
    (w = 0), each times a factor, are compared by Recall@10 at the same positions and the best
    is kept (the smaller factor on ties). Returns {"fitted x2": recall, ...}."""
    fitted = {k: v.detach().clone() for k, v in fusion.state_dict().items()}
    flat = {"gate.weight": torch.zeros_like(fitted["gate.weight"]), "gate.bias": torch.zeros_like(fitted["gate.bias"]),
            "log_scale": torch.tensor(float(np.log(2.0))),  # sigmoid(0) = 1/2: a flat gate of 1
            "prior_q": fitted["prior_q"]}
    curve, states = {}, {}
    with torch.no_grad():
        for name, state in (("fitted", fitted), ("flat", flat)):
            for f in factors:
                key = f"{name} x{f}"
                states[key] = {**state, "log_scale": state["log_scale"] + float(np.log(f))}
                fusion.load_state_dict(states[key])
                curve[key] = recall_at(fusion(data.content, data.users, data.rows, data.present[None]), data)
    best = max(curve, key=lambda k: (curve[k], -float(k.split("x")[1])))
    fusion.load_state_dict(states[best])
    logger.info("gate by Recall@10: %s; kept %s", curve, best)
    return curve


def rowless_share(valid: Sequence[dict[str, Any]], present_ids: set[str]) -> float:
    """Share of valid targets whose item has no ID row (cold, new or never admitted)."""
    return sum(str(e["item_id"]) not in present_ids for e in valid) / len(valid) if valid else 0.0


def tune_prior(fusion: Fusion, data: FusionData, rowless: float,
               quantiles=(0.5, 0.75, 0.9, 0.95, 0.97, 0.99)) -> dict[str, dict[str, float]]:
    """Choose where an item without a row sits on the ID scale (model/ids/hybrid.py, prior_q) by the
    expected Recall@10 of a stream whose targets lack a row with probability `rowless`:
    (1 - rowless) x Recall@10 at the positions + rowless x Recall@10 with each target's own row
    hidden (DropoutNet's simulation of a rowless target). Expected recalls less than one position
    (1/P) apart are ties, and ties go to the better hidden recall: the valid split's rowless share
    only bounds a serving stream's from below, since new items keep arriving after training.
    Then no prior, then the lower quantile. Returns {"off" | "q0.9": {"expected", "warm",
    "hidden"}}; the best is kept."""
    hidden = data.present[None, :].repeat(len(data.targets), 1)
    hidden[torch.arange(len(data.targets)), data.targets] = False
    curve, qs = {}, {}
    with torch.no_grad():
        for q in (-1.0, *quantiles):
            key = "off" if q < 0 else f"q{q:g}"
            fusion.prior_q.fill_(q)
            ref = fusion.reference(data.users, data.rows[data.present])
            warm = recall_at(fusion(data.content, data.users, data.rows, data.present[None], ref), data)
            cold = recall_at(fusion(data.content, data.users, data.rows, hidden, ref), data)
            curve[key], qs[key] = {"expected": (1 - rowless) * warm + rowless * cold, "warm": warm,
                                   "hidden": cold}, q
    top = max(c["expected"] for c in curve.values())
    near = [k for k in curve if curve[k]["expected"] > top - 1.0 / len(data.targets)]
    best = max(near, key=lambda k: (curve[k]["hidden"], curve[k]["expected"], k == "off", -qs[k]))
    fusion.prior_q.fill_(qs[best])
    logger.info("rowless prior (share %.3f): kept %s of %s", rowless, best, curve)
    return curve


@dataclass
class FusionData:
    """Everything the gate fit needs, as tensors over the whole catalogue."""

    content: torch.Tensor  # (P, N) content scores of every held-in position
    users: torch.Tensor  # (P, k) ID tower vectors at those positions
    rows: torch.Tensor  # (N, k) ID rows (zeros where absent)
    present: torch.Tensor  # (N,) bool
    targets: torch.Tensor  # (P,) catalogue index of the engaged item
    seen: torch.Tensor  # (P, N) bool: history items, excluded from the ranking


def fusion_data(held: Sequence[HeldIn], item_ids: Sequence[str],
                content_scores: Callable[[dict[str, list[dict]]], np.ndarray],
                user_vectors: Callable[[list[list[str]]], np.ndarray],
                rows: np.ndarray, present: np.ndarray) -> FusionData:
    """Score every held-in position with the frozen content model and the ID tower."""
    index = {i: k for k, i in enumerate(item_ids)}
    content = content_scores({h.key: h.history for h in held})
    users = user_vectors([[str(e["item_id"]) for e in h.history] for h in held])
    seen = torch.zeros(len(held), len(item_ids), dtype=torch.bool)
    for p, h in enumerate(held):
        seen[p, [index[str(e["item_id"])] for e in h.history if str(e["item_id"]) in index]] = True
    targets = torch.tensor([index[h.target] for h in held], dtype=torch.long)
    seen[torch.arange(len(held)), targets] = False  # a re-engaged item still counts as the target
    return FusionData(torch.from_numpy(np.asarray(content, np.float32)),
                      torch.from_numpy(np.asarray(users, np.float32)),
                      torch.from_numpy(np.asarray(rows, np.float32)),
                      torch.from_numpy(np.asarray(present, bool)), targets, seen)


def fit_fusion(data: FusionData, cfg: HybridConfig, seed: int = 0) -> tuple[Fusion, list[float]]:
    """Full-catalogue cross-entropy of the hybrid score over the held-in positions; returns the
    fitted Fusion and the loss per epoch. Row dropout hides the target's row in a share of them."""
    gen = torch.Generator().manual_seed(seed)
    fusion = Fusion(data.rows.shape[1])
    opt = torch.optim.Adam(fusion.parameters(), lr=cfg.fusion_lr)
    losses = []
    rows_p = torch.arange(len(data.targets))
    for _ in range(cfg.fusion_epochs):
        present = data.present[None, :].repeat(len(data.targets), 1)
        drop = torch.rand(len(data.targets), generator=gen) < cfg.row_dropout
        present[rows_p[drop], data.targets[drop]] = False
        scores = fusion(data.content, data.users, data.rows, present)
        loss = F.cross_entropy(scores.masked_fill(data.seen, float("-inf")), data.targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    logger.info("fusion fit: loss %.4f -> %.4f, scale %.3f", losses[0], losses[-1],
                float(fusion.log_scale.detach().exp()))
    return fusion.eval(), losses
