"""BPR-MF (Rendle et al. 2009): user and item factors, pairwise loss against uniform negatives,
early-stopped on valid Recall@10. A classic ID baseline for `threadrec evaluate`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.baselines import Ranker
from model.metrics import full_ranking_metrics

logger = logging.getLogger(__name__)


@dataclass
class BPROptions:
    """Factor size, optimiser and budget."""

    dim: int = 64  # factor size
    lr: float = 5e-3  # Adam learning rate
    l2: float = 1e-4  # L2 on the factors of each batch
    batch_size: int = 4096  # (user, positive, negative) triples per step
    max_epochs: int = 300  # upper bound on epochs
    patience: int = 10  # epochs without a better valid Recall@10 before stopping
    max_minutes: float = 5.0  # wall-clock budget
    seed: int = 0  # initialisation and sampling seed


class BPRRanker(Ranker):
    """Scores <p_u, q_i>; users and items unseen in train (or cold) score 0 / rank last."""

    name = "bpr"

    def __init__(self, item_ids: Sequence[str], train: Sequence[dict[str, Any]], valid: Sequence[dict[str, Any]],
                 cold: frozenset[str] = frozenset(), opts: BPROptions | None = None):
        super().__init__(item_ids)
        self.opts = opts or BPROptions()
        torch.manual_seed(self.opts.seed)
        rows = [e for e in train if str(e["item_id"]) not in cold]  # cold items: never a target
        self.users = {u: k for k, u in enumerate(sorted({str(e["user_id"]) for e in rows}))}
        self.has_row = np.array([i not in cold and i in {str(e["item_id"]) for e in rows} for i in self.item_ids])
        self.p = nn.Embedding(len(self.users), self.opts.dim)
        self.q = nn.Embedding(len(self.item_ids), self.opts.dim)
        for emb in (self.p, self.q):
            nn.init.normal_(emb.weight, std=0.1)
        pairs = np.array([(self.users[str(e["user_id"])], self.index[str(e["item_id"])]) for e in rows])
        self.seen = [set() for _ in self.users]
        for u, i in pairs:
            self.seen[u].add(int(i))
        self.facts = self._fit(torch.from_numpy(pairs), valid)

    def _fit(self, pairs: torch.Tensor, valid: Sequence[dict[str, Any]]) -> dict[str, Any]:
        opts, t0 = self.opts, time.time()
        opt = torch.optim.Adam([self.p.weight, self.q.weight], lr=opts.lr)
        gen = torch.Generator().manual_seed(opts.seed)
        best, best_state, best_epoch, curve = -1.0, None, 0, []
        for epoch in range(opts.max_epochs):
            loss = self._epoch(opt, pairs, gen)
            score = self.valid_recall(valid)
            curve.append({"epoch": epoch, "loss": round(loss, 4), "valid_recall@10": round(score, 4)})
            if score > best:
                best, best_epoch = score, epoch
                best_state = (self.p.weight.detach().clone(), self.q.weight.detach().clone())
            if epoch - best_epoch >= opts.patience or time.time() - t0 > 60 * opts.max_minutes:
                break
        with torch.no_grad():
            self.p.weight.copy_(best_state[0])
            self.q.weight.copy_(best_state[1])
        logger.info("BPR: best valid R@10 %.4f at epoch %d of %d", best, best_epoch, len(curve))
        return {"epochs": len(curve), "best_epoch": best_epoch, "best_valid_recall@10": best,
                "seconds": round(time.time() - t0, 1), "curve": curve}

    def _epoch(self, opt: torch.optim.Optimizer, pairs: torch.Tensor, gen: torch.Generator) -> float:
        order, total = torch.randperm(len(pairs), generator=gen), 0.0
        rowed = torch.from_numpy(np.flatnonzero(self.has_row))
        for k in range(0, len(pairs), self.opts.batch_size):
            u, i = pairs[order[k:k + self.opts.batch_size]].T
            j = rowed[torch.randint(len(rowed), (len(u),), generator=gen)]  # rare collisions with seen items
            pu, qi, qj = self.p(u), self.q(i), self.q(j)
            loss = -F.logsigmoid((pu * (qi - qj)).sum(1)).mean() + self.opts.l2 * (
                pu.pow(2).sum(1) + qi.pow(2).sum(1) + qj.pow(2).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(u)
        return total / max(len(pairs), 1)

    def valid_recall(self, valid: Sequence[dict[str, Any]]) -> float:
        """Full-ranking Recall@10 of the valid targets, train items excluded."""
        rows = [(self.users[str(e["user_id"])], self.index[str(e["item_id"])]) for e in valid
                if str(e["user_id"]) in self.users and str(e["item_id"]) in self.index]
        if not rows:
            return 0.0
        s = self.scores([u for u in self.users], self.item_ids)
        return float(np.mean([full_ranking_metrics(s[u], [t], list(self.seen[u]))["recall@10"] for u, t in rows]))

    def scores(self, user_ids, item_ids):
        with torch.no_grad():
            p = np.stack([self.p.weight[self.users[u]].numpy() if u in self.users else np.zeros(self.opts.dim)
                          for u in user_ids])
            cols = self.cols(item_ids)
            s = p @ self.q.weight.numpy()[cols].T
        s[:, ~self.has_row[cols]] = -1e9  # no row (cold or never engaged): ranks last
        return s.astype(np.float32)
