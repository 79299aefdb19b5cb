"""model/confidence.py: bootstrap intervals over users and paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluation.confidence import (
    bootstrap_interval,
    compare,
    paired_difference,
    paired_ratio,
    verdict,
)


def test_the_interval_covers_the_true_mean_about_95_times_in_100():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(100):
        iv = bootstrap_interval(rng.binomial(1, 0.2, size=400), resamples=500, seed=int(rng.integers(1 << 30)))
        covered += iv.lo <= 0.2 <= iv.hi
    assert 88 <= covered <= 100  # nominal 95; a 0/1 metric on 400 users


def test_the_interval_is_repeatable_and_narrows_with_users():
    rng = np.random.default_rng(2)
    small, large = rng.binomial(1, 0.2, 100), rng.binomial(1, 0.2, 10_000)
    assert bootstrap_interval(small) == bootstrap_interval(small)
    a, b = bootstrap_interval(small), bootstrap_interval(large)
    assert (b.hi - b.lo) < (a.hi - a.lo) / 5  # width ~ 1/sqrt(n): 10x narrower at 100x users


def test_pairing_cancels_what_the_users_share():
    """Two models that differ by 0.02 on every user, under per-user spread of 0.3: unpaired
    intervals overlap, the paired difference is exactly +0.02 and 'above'."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 0.6, size=300)
    a, b = base + 0.02, base
    ia, ib = bootstrap_interval(a), bootstrap_interval(b)
    assert ia.lo < ib.hi  # unpaired: within the noise
    v, diff = compare(a, b)
    assert v == "above" and diff.lo == pytest.approx(0.02) and diff.hi == pytest.approx(0.02)
    assert compare(b, a)[0] == "below"


def test_a_difference_within_the_noise_is_on_par():
    rng = np.random.default_rng(4)
    a, b = rng.binomial(1, 0.21, 943), rng.binomial(1, 0.20, 943)  # the README's 6 users of 943
    diff = paired_difference(a, b)
    assert diff.lo < 0 < diff.hi and verdict(diff) == "on par"


def test_unpaired_values_are_refused():
    with pytest.raises(ValueError, match="same users"):
        paired_difference([1.0, 0.0], [1.0])


def test_the_ratio_interval_resamples_pairs():
    rng = np.random.default_rng(5)
    frozen = rng.binomial(1, 0.10, 5000)
    online = np.maximum(frozen, rng.binomial(1, 0.02, 5000))  # every frozen hit kept, some added
    iv = paired_ratio(online, frozen)
    assert iv.lo > 1.0 and iv.lo <= iv.mean <= iv.hi
    same = paired_ratio(frozen, frozen)
    assert same.lo == same.mean == same.hi == 1.0
