"""Baselines scored in the same evaluation run: popularity, recent popularity, co-occurrence, content
(the ID baselines: SASRecRanker in model/evaluation/sasrec_baseline.py, BPRRanker in model/evaluation/bpr.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

DAY_S = 86400.0


class Ranker:
    """scores(user_ids, item_ids) -> (U, C) float array; higher = better."""

    name = "ranker"

    def __init__(self, item_ids: Sequence[str]):
        self.item_ids = list(item_ids)
        self.index = {i: k for k, i in enumerate(self.item_ids)}

    def cols(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.array([self.index[i] for i in item_ids], dtype=np.int64)

    def scores(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def warm_rows(train: Sequence[dict[str, Any]], cold: frozenset[str]) -> list[dict[str, Any]]:
    """The train engagements a baseline may count: none on a cold item (held out of training)."""
    return [e for e in train if str(e["item_id"]) not in cold] if cold else list(train)


class Popularity(Ranker):
    """Number of train engagements per item (cold items: never counted, so 0)."""

    name = "popularity"

    def __init__(self, item_ids: Sequence[str], train: Sequence[dict[str, Any]], cold: frozenset[str] = frozenset()):
        super().__init__(item_ids)
        self.counts = np.zeros(len(self.item_ids))
        for e in warm_rows(train, cold):
            self.counts[self.index[e["item_id"]]] += 1

    def scores(self, user_ids, item_ids):
        return np.tile(self.counts[self.cols(item_ids)], (len(user_ids), 1))


class DecayedPopularity(Ranker):
    """Train engagements in the `days` before each user's target time, weighted exp(-age/half-life)
    (reported as "recent_popularity"; not the engine's worker-local streams RecentPopularity).

    ref_ts: the time of each user's held-out engagement (its impression); only train
    engagements strictly before it count, so no later engagement leaks into the score.
    Users without a reference time (and ref_ts=None) use the end of the train split.
    """

    name = "recent_popularity"

    def __init__(self, item_ids, train, days: float = 14.0, half_life_days: float = 3.0,
                 ref_ts: dict[str, float] | None = None, cold: frozenset[str] = frozenset()):
        super().__init__(item_ids)
        rows = sorted((float(e["ts"]), self.index[e["item_id"]]) for e in warm_rows(train, cold))
        self.ts = np.array([t for t, _ in rows], float)
        self.items = np.array([i for _, i in rows], np.int64)
        self.t_end = float(self.ts[-1]) + 1.0 if len(rows) else 0.0  # after the last train event
        self.days, self.half_life_days = days, half_life_days
        self.ref_ts = ref_ts or {}
        self._cache: dict[float, np.ndarray] = {}

    def counts_at(self, t: float) -> np.ndarray:
        """Decayed counts of train engagements in [t - days, t) per item."""
        if t not in self._cache:
            lo = np.searchsorted(self.ts, t - self.days * DAY_S, side="left")
            hi = np.searchsorted(self.ts, t, side="left")
            w = 0.5 ** ((t - self.ts[lo:hi]) / (self.half_life_days * DAY_S))
            self._cache[t] = np.bincount(self.items[lo:hi], weights=w, minlength=len(self.item_ids))
        return self._cache[t]

    def scores(self, user_ids, item_ids):
        cols = self.cols(item_ids)
        return np.stack([self.counts_at(float(self.ref_ts.get(u, self.t_end)))[cols] for u in user_ids])


class CoOccurrence(Ranker):
    """Item-to-item CF: sum over history of co-occurrence counts, cosine-normalised (cold items
    are never counted: their rows and columns are 0)."""

    name = "cooccurrence"

    def __init__(self, item_ids, train, user_history: dict[str, list[str]], cold: frozenset[str] = frozenset()):
        from scipy import sparse

        super().__init__(item_ids)
        train = warm_rows(train, cold)
        users = sorted({e["user_id"] for e in train})
        uidx = {u: k for k, u in enumerate(users)}
        pairs = {(uidx[e["user_id"]], self.index[e["item_id"]]) for e in train}
        r, c = zip(*pairs, strict=True) if pairs else ((), ())
        x = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(users), len(self.item_ids)))
        co = (x.T @ x).tocsr().astype(float)  # (N, N) users engaging both
        co.setdiag(0)
        n = np.sqrt(np.asarray(x.sum(0)).ravel()) + 1e-9
        self.co = sparse.diags(1 / n) @ co @ sparse.diags(1 / n)
        self.history = user_history

    def scores(self, user_ids, item_ids):
        from scipy import sparse

        rows = [[self.index[i] for i in self.history.get(u, []) if i in self.index] for u in user_ids]
        indptr = np.cumsum([0] + [len(r) for r in rows])
        h = sparse.csr_matrix((np.ones(indptr[-1]), np.concatenate(rows or [[]]).astype(int), indptr),
                              shape=(len(user_ids), len(self.item_ids)))
        return np.asarray((h @ self.co)[:, self.cols(item_ids)].todense())


class ContentSimilarity(Ranker):
    """Zero-shot: cosine of mean-pooled MiniLM item embeddings, history mean vs candidate."""

    name = "content_minilm"

    def __init__(self, item_ids, items: dict[str, dict], user_history: dict[str, list[str]],
                 device: str | None = None, batch_size: int = 64):
        from transformers import AutoTokenizer, BertModel

        from model.backbones import packaged_minilm_dir, quiet_hf
        from model.device import pick_device
        from model.text import item_text

        super().__init__(item_ids)
        path = str(packaged_minilm_dir())
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        dev = pick_device(device)
        with quiet_hf():  # the packaged checkpoint carries an unused pooler
            enc = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False).to(dev).eval()
        vecs = []
        texts = [item_text(items[i]) for i in self.item_ids]
        with torch.no_grad():
            for k in range(0, len(texts), batch_size):
                b = tok(texts[k:k + batch_size], truncation=True, max_length=64, padding=True, return_tensors="pt").to(dev)
                h = enc(**b).last_hidden_state  # (B, T, d)
                m = b["attention_mask"][..., None].float()
                vecs.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).cpu())
        self.vecs = torch.cat(vecs).numpy()  # (N, d)
        self.history = user_history

    def scores(self, user_ids, item_ids):
        users = np.stack([self.vecs[[self.index[i] for i in self.history.get(u, []) if i in self.index] or [0]].mean(0)
                          for u in user_ids])
        users /= np.linalg.norm(users, axis=1, keepdims=True) + 1e-9
        return users @ self.vecs[self.cols(item_ids)].T
