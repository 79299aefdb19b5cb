"""store/faiss_bands.py: an IVF cut into norm bands (lists per band, budget 8:4:2:1 from the top)."""

from __future__ import annotations

import numpy as np
import pytest

from store import BruteForceIndex, IndexConfig
from store.faiss_bands import BandPlan, NormBands
from store.faiss_index import FaissIndex

DIM = 16
PLAN = BandPlan(cuts=(0.03, 0.1, 0.3), nlist_per_sqrt=1.0, iterations=5, max_points_per_list=64, seed=0)


def norm_varied(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Random directions with log-normal norms: the inner-product top-k favours large norms."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return [f"i{j}" for j in range(n)], x * rng.lognormal(0.0, 0.4, (n, 1)).astype(np.float32)


def test_bands_cut_by_norm_and_place_each_vector_in_its_bands_lists() -> None:
    _, x = norm_varied(6000)
    norms = np.linalg.norm(x, axis=1)
    bands = NormBands.train(x, norms, PLAN)
    assert len(bands.nlists) == 4 and np.all(np.diff(bands.edges) < 0)
    np.testing.assert_allclose(bands.fractions, [0.03, 0.07, 0.2, 0.7])
    band = bands.band_of(norms)
    assert [int((band == b).sum()) for b in range(4)] == [180, 420, 1200, 4200]
    assert norms[band == 0].min() >= norms[band == 1].max()
    stored, lists = bands.place(x)
    assert np.all((lists >= bands.starts[band]) & (lists < bands.starts[band] + bands.nlists[band]))
    # the extra coordinate gives each vector its band's radius; the inner products are unchanged
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), bands.radii[band], rtol=1e-5)
    np.testing.assert_array_equal(stored[:, :DIM], x)


def test_the_budget_halves_from_the_band_of_the_largest_norms() -> None:
    _, x = norm_varied(6000)
    bands = NormBands.train(x, np.linalg.norm(x, axis=1), PLAN)
    per_band = bands.lists_per_band(6000, scan_rows=1500, nprobe=None)
    rows = per_band * 6000 * bands.fractions / bands.nlists  # lists of each band's average size
    assert np.all(per_band >= 1) and np.all(per_band <= bands.nlists)
    assert rows[0] == pytest.approx(180) and rows[1] >= 400 * 4 / 8  # band 0 whole, band 1 its share
    assert rows[3] < rows[2] < 1500 * 4 / 15 * 1.5
    fixed = bands.lists_per_band(6000, scan_rows=1500, nprobe=10_000)
    np.testing.assert_array_equal(fixed, bands.nlists)  # an exhaustive nprobe probes everything


def recall(index, oracle, queries, k: int = 20) -> float:
    got = index.search_many(queries, k)
    want = oracle.search_many(queries, k)
    return float(np.mean([len({i for i, _ in g} & {i for i, _ in w}) / k for g, w in zip(got, want, strict=True)]))


def test_bands_find_more_of_the_inner_product_top_k_than_one_ivf_for_the_same_rows() -> None:
    ids, x = norm_varied(20_000)
    oracle = BruteForceIndex(DIM)
    oracle.upsert(ids, x)
    rng = np.random.default_rng(1)
    queries = [rng.standard_normal((3, DIM)).astype(np.float32) for _ in range(40)]
    common = dict(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=1500)
    banded, single = FaissIndex(IndexConfig(**common)), FaissIndex(IndexConfig(norm_bands=(), **common))
    for index in (banded, single):
        index.upsert(ids, x)
    assert banded.nlist and single.nlist
    r_banded, r_single = recall(banded, oracle, queries), recall(single, oracle, queries)
    assert r_banded > r_single + 0.05 and r_banded > 0.9


def test_a_banded_snapshot_restores_its_bands_and_an_unbanded_one_stays_unbanded(tmp_path) -> None:
    ids, x = norm_varied(5000)
    queries = [x[j:j + 2] for j in range(0, 30, 2)]
    for name, cuts in (("banded", (0.03, 0.1, 0.3)), ("single", ())):
        index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=800,
                                       norm_bands=cuts))
        index.upsert(ids, x)
        index.remove(ids[:100])
        index.upsert(["new"], x[:1] * 2)
        index.snapshot(tmp_path / name)
        again = FaissIndex.restore(tmp_path / name, IndexConfig(dim=DIM, scan_rows=800))
        assert again.nprobe == index.nprobe and again.nlist == index.nlist
        assert again.search_many(queries, 20) == index.search_many(queries, 20)
        again.upsert(["later"], x[1:2] * 3)  # a restored index places new items in its bands
        assert again.search(x[1:2], 1)[0][0] == "later"


def test_unit_vectors_get_one_ivf() -> None:
    ids, x = norm_varied(3000)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=300))
    index.upsert(ids, unit)
    assert index.mode == "ivf" and index.nprobe == -(-300 * index.nlist // 3000)  # the one-IVF rule
