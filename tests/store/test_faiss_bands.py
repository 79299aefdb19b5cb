"""store/faiss_bands.py: an IVF cut into norm bands (lists per band, budget 8:4:2:1 from the top)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from store import BruteForceIndex, IndexConfig
from store.faiss_bands import BandPlan, NormBands, merge_queries
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
    common = dict(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=1500, scan_rows_exponent=0.0)
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
    index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=300,
                                   scan_rows_exponent=0.0))
    index.upsert(ids, unit)
    assert index.mode == "ivf" and index.nprobe == -(-300 * index.nlist // 3000)  # the one-IVF rule


def half(x: np.ndarray) -> np.ndarray:
    """What fp16 codes hold: each coordinate rounded to half precision."""
    return x.astype(np.float16).astype(np.float32)


def test_fp16_codes_equal_an_oracle_of_the_rounded_vectors_through_upserts_and_removes() -> None:
    ids, x = norm_varied(3000)
    index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, nprobe=10_000))
    oracle = BruteForceIndex(DIM)
    final = dict(zip(ids, x, strict=True))
    index.upsert(ids, x)
    oracle.upsert(ids, half(x))
    rng = np.random.default_rng(2)
    for step in range(4):  # replace some, add some, remove some
        changed = [ids[j] for j in rng.choice(len(ids), 150, replace=False)] + [f"n{step}-{j}" for j in range(50)]
        new = norm_varied(200, seed=10 + step)[1]
        gone = [ids[j] for j in rng.choice(len(ids), 100, replace=False)]
        index.upsert(changed, new)
        oracle.upsert(changed, half(new))
        index.remove(gone)
        oracle.remove(gone)
        final.update(zip(changed, new, strict=True))
        for i in gone:
            final.pop(i, None)
        ids = list(final)
    assert index.mode == "ivf" and index._bands is not None and index._bands.codes == "fp16"
    assert index._bands.width % 16 == 0 and faiss_dim(index) == index._bands.width
    queries = [rng.standard_normal((3, DIM)).astype(np.float32) for _ in range(12)]
    for got, want in zip(index.search_many(queries, 25), oracle.search_many(queries, 25), strict=True):
        assert [g[0] for g in got] == [w[0] for w in want]
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-5, atol=1e-5)
    labels, vectors = index.export()  # reconstruction gives back the rounded vectors, unpadded
    live = {index._ids.id_of[int(lab)]: v for lab, v in zip(labels, vectors, strict=True)}
    assert set(live) == set(final)
    # within one fp16 step: faiss rounds a few halfway cases the other way from numpy
    np.testing.assert_allclose(np.stack([live[i] for i in final]), half(np.stack(list(final.values()))),
                               rtol=2.0**-10, atol=2.0**-24)


def faiss_dim(index: FaissIndex) -> int:
    return index._master.d


def test_pooled_probes_spend_each_users_budget_on_its_best_pairs() -> None:
    _, x = norm_varied(6000)
    bands = NormBands.train(x, np.linalg.norm(x, axis=1), PLAN)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((4, DIM)).astype(np.float32), rng.standard_normal((2, DIM)).astype(np.float32)
    pad = np.zeros((6, bands.width - DIM), np.float32)
    both = np.hstack([np.vstack([a, b]), pad])
    lists, _ = bands.pooled_probes(both, [4, 2], 6000, scan_rows=300, spread=0.25)
    rows = 6000 * bands.fractions / bands.nlists
    per_list = rows[np.searchsorted(bands.starts, np.arange(bands.nlist), side="right") - 1]
    for span in (slice(0, 4), slice(4, 6)):
        chosen = lists[span][lists[span] >= 0]
        spent = per_list[chosen].sum()
        assert 300 * (span.stop - span.start) - per_list.max() <= spent <= 300 * (span.stop - span.start)
        assert len(np.unique(lists[span][0][lists[span][0] >= 0])) == (lists[span][0] >= 0).sum()
        # the best pairs: every chosen (query, list) pair's key is at least every unchosen one's
        q = both[span]
        key = q @ bands._centroids_t + 0.25 * np.linalg.norm(q, axis=1, keepdims=True) * bands._list_radius
        taken = np.zeros(key.shape, bool)
        for r, row in enumerate(lists[span]):
            taken[r, row[row >= 0]] = True
        assert key[taken].min() >= key[~taken].max() - 1e-5
    alone, _ = bands.pooled_probes(both[4:], [0, 2], 6000, scan_rows=300, spread=0.25)  # a user without queries
    np.testing.assert_array_equal(alone[:, : (alone >= 0).sum(1).max()],
                                  lists[4:, : (alone >= 0).sum(1).max()])  # another user changes nothing


def test_pooled_probes_find_more_of_the_top_k_than_per_query_shares_for_the_same_rows() -> None:
    ids, x = norm_varied(20_000)
    oracle = BruteForceIndex(DIM)
    oracle.upsert(ids, x)
    rng = np.random.default_rng(1)
    # queries of unequal norms, as a user's interests are: the pool goes where the top-k is
    queries = [rng.standard_normal((6, DIM)).astype(np.float32) * rng.lognormal(0, 0.5, (6, 1)).astype(np.float32)
               for _ in range(40)]
    common = dict(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=600)
    pooled = FaissIndex(IndexConfig(ivf_codes="flat", **common))
    shares = FaissIndex(IndexConfig(pooled_probes=False, ivf_codes="flat", **common))
    for index in (pooled, shares):
        index.upsert(ids, x)
    assert recall(pooled, oracle, queries) > recall(shares, oracle, queries) + 0.02


def test_a_format_3_snapshot_of_fp32_bands_still_serves(tmp_path) -> None:
    ids, x = norm_varied(4000)
    cfg = IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, nprobe=10_000, ivf_codes="flat")
    index = FaissIndex(cfg)
    index.upsert(ids, x)
    index.snapshot(tmp_path / "snap")
    meta_path = tmp_path / "snap" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = 3
    del meta["bands"]["codes"]  # as format 3 wrote it
    meta_path.write_text(json.dumps(meta))
    again = FaissIndex.restore(tmp_path / "snap", IndexConfig(dim=DIM, nprobe=10_000))
    assert again._bands.codes == "flat" and again._master.d == DIM + 1
    queries = [x[j:j + 2] for j in range(0, 20, 2)]
    assert again.search_many(queries, 15) == index.search_many(queries, 15)


def test_a_budget_following_the_catalogue_probes_as_a_fixed_budget_of_its_rows() -> None:
    ids, x = norm_varied(4000)
    common = dict(dim=DIM, exact_threshold=100, rebuild_aside=False)
    # 4,000 items of a budget set at 32,000 (1/8) with the cube root: half of 1,600 rows
    scaled = FaissIndex(IndexConfig(scan_rows=1600, scan_rows_items=32_000, scan_rows_exponent=1 / 3, **common))
    fixed = FaissIndex(IndexConfig(scan_rows=800, scan_rows_exponent=0.0, **common))
    full = FaissIndex(IndexConfig(scan_rows=1600, scan_rows_exponent=0.0, **common))
    for index in (scaled, fixed, full):
        index.upsert(ids, x)
    queries = [x[j:j + 3] * 2 for j in range(0, 60, 3)]
    assert scaled.nprobe == fixed.nprobe < full.nprobe
    assert scaled.search_many(queries, 20) == fixed.search_many(queries, 20)


def test_merge_queries_keeps_the_larger_of_near_duplicates_and_every_distinct_query_in_order() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, DIM)).astype(np.float32)
    near = a * 0.5 + 1e-4 * rng.standard_normal(DIM).astype(np.float32)  # cos ~1 with a, smaller
    queries = np.stack([near, b, a, -a])
    np.testing.assert_array_equal(merge_queries(queries, 0.999), queries[[1, 2, 3]])
    np.testing.assert_array_equal(merge_queries(queries, 1.0 + 1e-6), queries)  # a cosine above 1: none
    np.testing.assert_array_equal(merge_queries(queries[:1], 0.999), queries[:1])


def test_merged_near_duplicate_queries_keep_their_users_budget_and_find_as_much() -> None:
    """A user whose queries are near-duplicates of 2 directions is searched with those 2 and the
    row budget of all 8 (the lists they would have re-read go to the next best): recall of the
    top-k over all 8 queries is clearly above the unmerged search's, and the probes spend 8 x scan_rows."""
    ids, x = norm_varied(20_000)
    oracle = BruteForceIndex(DIM)
    oracle.upsert(ids, x)
    rng = np.random.default_rng(6)
    users = []
    for _ in range(30):
        base = rng.standard_normal((2, DIM)).astype(np.float32)
        users.append(np.repeat(base, 4, axis=0) * rng.uniform(0.9, 1.0, (8, 1)).astype(np.float32)
                     + 1e-4 * rng.standard_normal((8, DIM)).astype(np.float32))
    common = dict(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_rows=150, scan_rows_exponent=0.0)
    merged, plain = FaissIndex(IndexConfig(**common)), FaissIndex(IndexConfig(query_merge_cos=1.0, **common))
    for index in (merged, plain):
        index.upsert(ids, x)
    r_merged, r_plain = recall(merged, oracle, users), recall(plain, oracle, users)
    assert r_merged > r_plain + 0.1  # 0.84 against 0.64 here
    bands = merged._bands
    kept = merge_queries(users[0], 0.999)
    assert len(kept) == 2
    padded = np.hstack([kept, np.zeros((2, bands.width - DIM), np.float32)])
    lists, _ = merged._probes(bands, padded, [2], [8])
    spent = sum(merged._master.invlists.list_size(int(j)) for j in lists[lists >= 0])
    assert spent > 4 * 150  # the budget of 8 queries, where 2 alone would have 300 rows
