"""Confidence intervals for ranking metrics: bootstrap over users, paired for differences.

A metric averaged over a few hundred users moves by more than most reported margins (one
R@10 on 943 MovieLens users has a standard error near 0.013), so every comparison goes through
`compare`: "above" or "below" only when the paired interval of the difference excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided bootstrap interval."""

    mean: float
    lo: float
    hi: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n}


def _resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of `resamples` draws of len(values) users with replacement (fixed seed: repeatable)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[idx].mean(axis=1)


def bootstrap_interval(values: Sequence[float], resamples: int = RESAMPLES, level: float = LEVEL,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of per-user values."""
    v = np.asarray(values, float)
    if len(v) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    means = _resampled_means(v, resamples, seed)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Interval(float(v.mean()), float(lo), float(hi), len(v))


def paired_difference(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> Interval:
    """Interval of mean(a - b) where a[k] and b[k] are the same user's values (the same users
    resampled for both, so what the users share cancels)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same users: {a.shape} vs {b.shape}")
    return bootstrap_interval(a - b, resamples, level, seed)


def verdict(diff: Interval) -> str:
    """'above', 'below' or 'on par': the sign only when the interval excludes 0."""
    if diff.lo > 0:
        return "above"
    if diff.hi < 0:
        return "below"
    return "on par"


def compare(a: Sequence[float], b: Sequence[float], **kw) -> tuple[str, Interval]:
    """The verdict of A against B on the same users, and the interval it rests on."""
    diff = paired_difference(a, b, **kw)
    return verdict(diff), diff


def paired_ratio(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES, level: float = LEVEL,
                 seed: int = 0) -> Interval:
    """Interval of mean(a) / mean(b) over paired judgments (the same pairs resampled for both)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(f"paired values need the same, non-empty judgments: {a.shape} vs {b.shape}")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    ratios = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-12)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return Interval(float(a.mean() / max(b.mean(), 1e-12)), float(lo), float(hi), len(a))
