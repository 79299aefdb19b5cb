"""Ranking metrics: MIND protocol per impression, full ranking, and online next-engagement."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC via the rank-sum (ties get average ranks), as sklearn's roc_auc_score."""
    y, s = np.asarray(labels, bool), np.asarray(scores, float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over runs of equal scores
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _sorted_labels(labels: Sequence[int], scores: Sequence[float]) -> np.ndarray:
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    return np.asarray(labels, float)[order]


def mrr(labels: Sequence[int], scores: Sequence[float]) -> float:
    """MIND MRR: sum over positives of 1/rank, divided by the number of positives."""
    y = _sorted_labels(labels, scores)
    return float((y / np.arange(1, len(y) + 1)).sum() / max(y.sum(), 1))


def dcg_at_k(sorted_labels: np.ndarray, k: int) -> float:
    y = sorted_labels[:k]
    return float(((2**y - 1) / np.log2(np.arange(2, len(y) + 2))).sum())


def ndcg_at_k(labels: Sequence[int], scores: Sequence[float], k: int) -> float:
    """MIND nDCG@k: DCG of the ranking over DCG of the ideal ranking."""
    ideal = dcg_at_k(np.sort(np.asarray(labels, float))[::-1], k)
    return dcg_at_k(_sorted_labels(labels, scores), k) / ideal if ideal > 0 else 0.0


def impression_metrics(rows: Iterable[tuple[Sequence[int], Sequence[float]]]) -> dict[str, float]:
    """AUC, MRR, nDCG@5, nDCG@10 averaged over impressions (AUC over those with both labels)."""
    acc: dict[str, list[float]] = {"auc": [], "mrr": [], "ndcg@5": [], "ndcg@10": []}
    for y, s in rows:
        a = auc(y, s)
        if not np.isnan(a):
            acc["auc"].append(a)
        acc["mrr"].append(mrr(y, s))
        acc["ndcg@5"].append(ndcg_at_k(y, s, 5))
        acc["ndcg@10"].append(ndcg_at_k(y, s, 10))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()}


def full_ranking_metrics(scores: np.ndarray, positives: Sequence[int], excluded: Sequence[int],
                         ks: Sequence[int] = (10, 50)) -> dict[str, float]:
    """Recall@k and binary nDCG@k of one user's ranking over all items minus excluded ones."""
    s = np.asarray(scores, float).copy()
    s[list(excluded)] = -np.inf
    top = np.argsort(-s, kind="mergesort")[: max(ks)]
    pos = set(positives)
    hits = np.array([t in pos for t in top], float)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = float(hits[:k].sum() / max(len(pos), 1))
        ideal = dcg_at_k(np.ones(min(len(pos), k)), k)
        out[f"ndcg@{k}"] = dcg_at_k(hits, k) / ideal if ideal > 0 else 0.0
    return out


class NextEngagement:
    """Online Recall@k / nDCG@k: each ranking shown to a user is judged by that user's next
    engagement, the one relevant item (so its nDCG is 1/log2(2 + rank) inside the top k)."""

    def __init__(self, k: int = 10):
        self.k, self.hits, self.ndcg, self.n = k, 0, 0.0, 0

    def add(self, ranked: Sequence[str], target: str) -> float:
        """Judge one ranking against its target; returns the gain (0.0 when outside the top k)."""
        top = list(ranked[: self.k])
        gain = 1.0 / math.log2(top.index(target) + 2) if target in top else 0.0
        self.n += 1
        self.hits += target in top
        self.ndcg += gain
        return gain

    def result(self) -> dict[str, float | int]:
        """{"recall@k", "ndcg@k"} means over the judged rankings (0.0 when none) and "judged"."""
        n = max(self.n, 1)
        return {f"recall@{self.k}": self.hits / n, f"ndcg@{self.k}": self.ndcg / n, "judged": self.n}
