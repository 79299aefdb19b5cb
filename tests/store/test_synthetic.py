"""The seeded generators of store/synthetic.py: the fitted mixture keeps what it was fitted to."""

from __future__ import annotations

import numpy as np

from store.synthetic import FittedVectors


def _real(n: int = 4000, dim: int = 24) -> np.ndarray:
    """Stand-in for encoded items: 6 anisotropic clusters, norms spread like the encoder's."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, dim)) * 2
    rows = centres[rng.integers(0, 6, n)] + rng.standard_normal((n, dim)) * np.linspace(0.2, 1.0, dim)
    return (rows * rng.uniform(0.5, 1.5, (n, 1))).astype(np.float32)


def test_samples_are_seeded_and_keep_the_norms_and_directions_of_the_data() -> None:
    real = _real()
    fitted = FittedVectors.fit(real, clusters=12, rank=4, seed=3)
    a, b, c = fitted.sample(3000, 1), fitted.sample(3000, 1), fitted.sample(3000, 2)
    assert a.shape == (3000, 24) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    norms, want = np.linalg.norm(a, axis=1), np.linalg.norm(real, axis=1)
    assert norms.min() >= want.min() - 1e-4 and norms.max() <= want.max() + 1e-4
    assert abs(np.median(norms) - np.median(want)) < 0.1 * np.median(want)
    # each sample points the way some real row does, far more than random directions would
    unit = a / norms[:, None]
    real_unit = real / want[:, None]
    best = (unit[:500] @ real_unit.T).max(axis=1)
    shuffled = np.random.default_rng(5).standard_normal((500, 24))
    shuffled /= np.linalg.norm(shuffled, axis=1, keepdims=True)
    assert np.median(best) > 0.9 > np.median((shuffled @ real_unit.T).max(axis=1))
