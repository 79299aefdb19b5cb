"""BPR-MF (Rendle et al. 2009): user and item factors, pairwise loss against uniform negatives
the user has not engaged with, early-stopped on valid Recall@10. A classic ID baseline for
`threadrec evaluate`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.evaluation.baselines import Ranker
from model.evaluation.early_stop import early_stopped
from model.evaluation.metrics import full_ranking_metrics

logger = logging.getLogger(__name__)


@dataclass
class BPROptions:
    """Factor size, optimiser and budget (defaults tuned on ML-100K valid, see fit)."""

    dim: int = 64  # factor size
    lr: float = 5e-3  # Adam learning rate
    l2: float = 1e-4  # L2 on the factors of each batch (the BPR regulariser, i.e. weight decay)
    batch_size: int = 4096  # (user, positive, negative) triples per step
    max_epochs: int = 300  # upper bound on epochs
    patience: int = 10  # epochs without a better valid Recall@10 before stopping
    max_minutes: float = 5.0  # wall-clock budget
    seed: int = 0  # initialisation and sampling seed


class BPRRanker(Ranker):
    """Scores <p_u, q_i>; items without a factor (cold, or never engaged in train) rank last and
    users unseen in train score every item 0."""

    name = "bpr"

    def __init__(self, item_ids: Sequence[str], cold: frozenset[str] = frozenset(), opts: BPROptions | None = None):
        super().__init__(item_ids)
        self.cold, self.opts = frozenset(cold), opts or BPROptions()
        self.users: dict[str, int] = {}
        self.has_row = np.zeros(len(self.item_ids), bool)
        self.seen: list[set[int]] = []
        self.facts: dict[str, Any] = {}
        self.p = nn.Embedding(0, self.opts.dim)
        self.q = nn.Embedding(len(self.item_ids), self.opts.dim)

    def fit(self, train: Sequence[dict[str, Any]], valid: Sequence[dict[str, Any]],
            progress: bool = False) -> BPRRanker:
        """Train on the train engagements (cold items never a positive, a negative or a factor);
        after every epoch, full-ranking Recall@10 of the valid targets (train items excluded;
        nDCG@10 breaks ties); stop after `patience` epochs without a better one or past the
        budget; keep the best factors. Records self.facts."""
        opts = self.opts
        torch.manual_seed(opts.seed)
        rows = [e for e in train if str(e["item_id"]) not in self.cold and str(e["item_id"]) in self.index]
        self.users = {u: k for k, u in enumerate(sorted({str(e["user_id"]) for e in rows}))}
        pairs = np.array(sorted({(self.users[str(e["user_id"])], self.index[str(e["item_id"])]) for e in rows}),
                         dtype=np.int64).reshape(-1, 2)
        self.has_row = np.zeros(len(self.item_ids), bool)
        self.has_row[pairs[:, 1]] = True
        self.seen = [set() for _ in self.users]
        for u, i in pairs:
            self.seen[u].add(int(i))
        self.p = nn.Embedding(len(self.users), opts.dim)
        self.q = nn.Embedding(len(self.item_ids), opts.dim)
        for emb in (self.p, self.q):
            nn.init.normal_(emb.weight, std=0.1)
        self._keys = torch.from_numpy(pairs[:, 0] * len(self.item_ids) + pairs[:, 1])  # sorted: (u, i) engaged
        valid_rows = [(self.users[str(e["user_id"])], self.index[str(e["item_id"])]) for e in valid
                      if str(e["user_id"]) in self.users and str(e["item_id"]) in self.index]
        self.facts = self._train(torch.from_numpy(pairs), valid_rows, progress)
        return self

    def _train(self, pairs: torch.Tensor, valid_rows: list[tuple[int, int]], progress: bool) -> dict[str, Any]:
        opt = torch.optim.Adam([self.p.weight, self.q.weight], lr=self.opts.lr)
        gen = torch.Generator().manual_seed(self.opts.seed)
        facts = early_stopped("BPR", self.opts, lambda: self._epoch(opt, pairs, gen),
                              lambda: self.valid_metrics(valid_rows), self._weights, self._set_weights, progress)
        return {**facts, "pairs": len(pairs)}

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.p.weight.detach().clone(), self.q.weight.detach().clone()

    @torch.no_grad()
    def _set_weights(self, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.p.weight.copy_(state[0])
        self.q.weight.copy_(state[1])

    def negatives(self, u: torch.Tensor, gen: torch.Generator, tries: int = 20) -> torch.Tensor:
        """One item per user drawn uniformly from the items with a factor that the user has not
        engaged with (rejection sampling; after `tries` rounds a rare leftover keeps its draw)."""
        rowed = torch.from_numpy(np.flatnonzero(self.has_row))
        j = rowed[torch.randint(len(rowed), (len(u),), generator=gen)]
        for _ in range(tries):
            bad = self.engaged(u, j)
            if not bad.any():
                break
            j[bad] = rowed[torch.randint(len(rowed), (int(bad.sum()),), generator=gen)]
        return j

    def engaged(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Whether each (user row, item column) is a train engagement (binary search in the sorted keys)."""
        q = u * len(self.item_ids) + i
        at = torch.searchsorted(self._keys, q).clamp(max=max(len(self._keys) - 1, 0))
        return self._keys[at] == q if len(self._keys) else torch.zeros_like(q, dtype=torch.bool)

    def _epoch(self, opt: torch.optim.Optimizer, pairs: torch.Tensor, gen: torch.Generator) -> float:
        order, total = torch.randperm(len(pairs), generator=gen), 0.0
        for k in range(0, len(pairs), self.opts.batch_size):
            u, i = pairs[order[k:k + self.opts.batch_size]].T
            j = self.negatives(u, gen)
            pu, qi, qj = self.p(u), self.q(i), self.q(j)
            loss = -F.logsigmoid((pu * (qi - qj)).sum(1)).mean() + self.opts.l2 * (
                pu.pow(2).sum(1) + qi.pow(2).sum(1) + qj.pow(2).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(u)
        return total / max(len(pairs), 1)

    def valid_metrics(self, rows: list[tuple[int, int]]) -> tuple[float, float]:
        """(Recall@10, nDCG@10) of (user row, item column) valid targets, train items excluded."""
        if not rows:
            return 0.0, 0.0
        with torch.no_grad():
            s = (self.p.weight[[u for u, _ in rows]] @ self.q.weight.T).numpy()
        s[:, ~self.has_row] = -np.inf
        per = [full_ranking_metrics(s[n], [t], list(self.seen[u]), ks=(10,)) for n, (u, t) in enumerate(rows)]
        return float(np.mean([m["recall@10"] for m in per])), float(np.mean([m["ndcg@10"] for m in per]))

    def scores(self, user_ids, item_ids):
        with torch.no_grad():
            p = np.stack([self.p.weight[self.users[u]].numpy() if u in self.users else np.zeros(self.opts.dim)
                          for u in user_ids]) if len(user_ids) else np.zeros((0, self.opts.dim))
            cols = self.cols(item_ids)
            s = p @ self.q.weight.numpy()[cols].T
        s[:, ~self.has_row[cols]] = -1e9  # no factor (cold or never engaged): ranks last
        return s.astype(np.float32)
