"""SASRec trained with cross-entropy over the catalogue (Klenitskiy & Vasilev 2023): the
tower's fit on a split (also the hybrid recipe's) and the sequential ID baseline ranker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from model.evaluation.baselines import Ranker
from model.evaluation.early_stop import early_stopped
from model.evaluation.metrics import full_ranking_metrics
from model.ids.sasrec import SASRec, SASRecOptions, logits


def windows(sequences: Sequence[Sequence[int]], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training windows (inputs, targets), each (W, max_len) left-padded: every user sequence is
    cut from its end into chunks of max_len next-item predictions, so long histories all train."""
    ins, outs = [], []
    for s in sequences:
        for end in range(len(s), 1, -max_len):
            chunk = s[max(0, end - max_len - 1):end]
            ins.append(chunk[:-1])
            outs.append(chunk[1:])
    pad = torch.zeros(len(ins), max_len, dtype=torch.long)
    x, y = pad.clone(), pad.clone()
    for w, (i, o) in enumerate(zip(ins, outs, strict=True)):
        x[w, -len(i):], y[w, -len(o):] = torch.tensor(i), torch.tensor(o)
    return x, y


def fit_sasrec(data, rows: Sequence[dict[str, Any]], admitted: set[str], opts: SASRecOptions | None = None,
               progress: bool = True) -> SASRec:
    """Train on rows (event-time order) for the admitted items only (a collisionless table has
    no row for the others); early stopping on valid Recall@10, best epoch kept."""
    opts = opts or SASRecOptions()
    torch.manual_seed(opts.seed)
    model = SASRec(sorted(admitted), opts)
    users: dict[str, list[int]] = {}
    for e in rows:
        k = model.index.get(str(e["item_id"]))
        if k:
            users.setdefault(str(e["user_id"]), []).append(k)
    x, y = windows(list(users.values()), opts.max_len)
    valid = ValidSet.of(data, model)
    return _train(model, x, y, valid, progress)


def _train(model: SASRec, x: torch.Tensor, y: torch.Tensor, valid: ValidSet, progress: bool) -> SASRec:
    """AdamW epochs over the windows, early-stopped on valid full-ranking Recall@10; keep the best."""
    opts = model.opts
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    gen = torch.Generator().manual_seed(opts.seed)
    facts = early_stopped("SASRec", opts, lambda: _epoch(model, opt, x, y, gen), lambda: valid.metrics(model),
                          lambda: {k: v.clone() for k, v in model.state_dict().items()},
                          model.load_state_dict, progress)
    model.facts = {**facts, "windows": len(x)}
    return model.eval()


def _epoch(model: SASRec, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
           gen: torch.Generator) -> float:
    model.train()
    order, total = torch.randperm(len(x), generator=gen), 0.0
    for k in range(0, len(x), model.opts.batch_size):
        b = order[k:k + model.opts.batch_size]
        target = y[b]
        at = target > 0  # windows are left-padded: only real next-item positions are scored
        loss = F.cross_entropy(logits(model, model(x[b])[at]), target[at])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(b)
    return total / max(len(x), 1)


@dataclass
class ValidSet:
    """Valid users' train sequences and targets, for early stopping on full-ranking Recall@10."""

    sequences: list[list[str]]
    targets: list[int]
    seen: list[list[int]]

    @classmethod
    def of(cls, data, model: SASRec) -> ValidSet:
        hist: dict[str, list[str]] = {}
        for e in data.train:
            hist.setdefault(str(e["user_id"]), []).append(str(e["item_id"]))
        rows = [(hist.get(str(e["user_id"]), []), model.index[str(e["item_id"])] - 1)
                for e in data.valid if str(e["item_id"]) in model.index]
        return cls([s for s, _ in rows], [t for _, t in rows],
                   [[model.index[i] - 1 for i in s if i in model.index] for s, _ in rows])

    def metrics(self, model: SASRec, k: int = 10) -> tuple[float, float]:
        """(Recall@k, nDCG@k) over the valid targets, full ranking minus each user's train items."""
        if not self.targets:
            return 0.0, 0.0
        h = torch.from_numpy(model.user_vectors(self.sequences))
        with torch.no_grad():
            scores = logits(model, h)[:, 1:].numpy()
        per = [full_ranking_metrics(scores[u], [t], self.seen[u], ks=(k,)) for u, t in enumerate(self.targets)]
        return float(np.mean([m[f"recall@{k}"] for m in per])), float(np.mean([m[f"ndcg@{k}"] for m in per]))


class SASRecRanker(Ranker):
    """The SASRec baseline: fitted on the train split, scoring from each user's history of the
    evaluated split (train for valid, train + valid for test).

    Cold items (and any item never engaged in train) get no ID row: they are never a training
    target, never an output row (they rank last), and they are dropped from input sequences
    rather than mapped to a shared "unknown" row, so the tower reads the user's other items in
    order and no row is trained on what a cold item stands for."""

    name = "sasrec"

    def __init__(self, item_ids: Sequence[str], user_history: dict[str, list[str]],
                 cold: frozenset[str] = frozenset(), opts: SASRecOptions | None = None):
        super().__init__(item_ids)
        self.history, self.cold, self.opts = user_history, frozenset(cold), opts or SASRecOptions()
        self.model: SASRec | None = None
        self.facts: dict[str, Any] = {}

    def fit(self, data, progress: bool = False) -> SASRecRanker:
        """Train on data.train (early stopping on data.valid with train histories); records self.facts."""
        admitted = {str(e["item_id"]) for e in data.train} - self.cold
        self.model = fit_sasrec(data, data.train, admitted & set(self.index), self.opts, progress)
        self.facts = self.model.facts
        return self

    def scores(self, user_ids, item_ids):
        h = torch.from_numpy(self.model.user_vectors([self.history.get(u, []) for u in user_ids]))
        with torch.no_grad():
            out = logits(self.model, h).numpy()
        cols = np.array([self.model.index.get(i, 0) for i in item_ids], dtype=np.int64)
        s = out[:, cols]
        s[:, cols == 0] = -1e9  # no ID row (cold, or never engaged in train): ranks last
        return s
