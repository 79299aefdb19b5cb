"""store/faiss_scan.py: a 4-bit PQ fast-scan copy of the banded lists, refined with the fp16 codes."""

from __future__ import annotations

import json

import faiss
import numpy as np

from store import BruteForceIndex, IndexConfig
from store.faiss_index import FaissIndex, pad_queries
from store.faiss_scan import LABEL_BITS
from tests.store.test_faiss_bands import DIM, half, norm_varied

# fp16 codes pad 16 + 1 coordinates to 32: 16 sub-quantizers of 2; fetch 32 x 128 covers every item
SCAN = dict(dim=DIM, exact_threshold=100, rebuild_aside=False, scan_pq=16)


def churned(index: FaissIndex, oracle: BruteForceIndex | None = None, n: int = 3000) -> dict[str, np.ndarray]:
    """Upsert n items into index, then replace, add and remove some four times; the live vectors."""
    ids, x = norm_varied(n)
    index.upsert(ids, x)
    final = dict(zip(ids, x, strict=True))
    rng = np.random.default_rng(2)
    for step in range(4):
        changed = [ids[j] for j in rng.choice(len(ids), 150, replace=False)] + [f"n{step}-{j}" for j in range(50)]
        new = norm_varied(200, seed=10 + step)[1]
        gone = [ids[j] for j in rng.choice(len(ids), 100, replace=False)]
        index.upsert(changed, new)
        index.remove(gone)
        final.update(zip(changed, new, strict=True))
        for i in gone:
            final.pop(i, None)
        ids = list(final)
    if oracle is not None:
        oracle.upsert(list(final), half(np.stack(list(final.values()))))
    return final


def test_the_pq_copy_holds_each_live_item_once_in_its_ivf_list_with_its_own_codes() -> None:
    index = FaissIndex(IndexConfig(**SCAN))
    final = churned(index)
    assert index.mode == "ivf" and index._scan is not None
    ivf, scan = faiss.extract_index_ivf(index._master), index._scan.index
    lists = faiss.downcast_InvertedLists(scan.invlists)
    for lst in range(ivf.nlist):  # the same list for each label, no dead or duplicate entry
        want = faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), ivf.invlists.list_size(lst))
        got = faiss.rev_swig_ptr(lists.get_ids(lst), lists.list_size(lst))
        assert np.all(got >> LABEL_BITS == lst)
        assert sorted((got & ((1 << LABEL_BITS) - 1)).tolist()) == sorted(want.tolist())
    assert scan.ntotal == ivf.ntotal == len(final)
    # every item's fast-scan score is q.c + q.(its decoded residual code): codes packed after
    # removals are whole (faiss' own add_with_ids ORs new codes into the stale ones there)
    q = np.random.default_rng(5).standard_normal((1, DIM)).astype(np.float32)
    padded = pad_queries(q, index._norm, scan.d)
    probes = np.arange(ivf.nlist)[None]
    centroids = index._bands.centroids()
    scan.nprobe = ivf.nlist
    scores, got = scan.search_preassigned(padded, len(final), probes, padded @ centroids.T)
    label_of = index._ids.label_of
    stored, placed = index._bands.place(np.stack(list(final.values())))
    residual = stored - centroids[placed]
    want = padded @ (centroids[placed] + scan.pq.decode(scan.pq.compute_codes(residual))).T
    by_label = dict(zip([label_of[i] for i in final], want[0].tolist(), strict=True))
    found = dict(zip((got[0] & ((1 << LABEL_BITS) - 1)).tolist(), scores[0].tolist(), strict=True))
    assert set(found) == set(by_label)
    spread = max(by_label.values()) - min(by_label.values())
    assert max(abs(found[k] - by_label[k]) for k in found) < 0.02 * spread  # the LUTs' 8-bit rounding


def test_with_every_item_a_candidate_the_search_equals_an_oracle_of_the_rounded_vectors() -> None:
    index, oracle = FaissIndex(IndexConfig(nprobe=10_000, scan_refine=128, **SCAN)), BruteForceIndex(DIM)
    churned(index, oracle)
    rng = np.random.default_rng(3)
    queries = [rng.standard_normal((3, DIM)).astype(np.float32) for _ in range(12)]
    for got, want in zip(index.search_many(queries, 25), oracle.search_many(queries, 25), strict=True):
        assert [g[0] for g in got] == [w[0] for w in want]
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-5, atol=1e-5)


def test_the_refine_keeps_the_pq_candidates_best_by_their_fp16_scores() -> None:
    index, oracle = FaissIndex(IndexConfig(nprobe=10_000, scan_refine=2, **SCAN)), BruteForceIndex(DIM)
    churned(index, oracle)
    rng = np.random.default_rng(4)
    q = rng.standard_normal((2, DIM)).astype(np.float32)
    padded = pad_queries(q, index._norm, index._master.d)
    probes = index._probes(index._bands, padded, [2])
    candidates = index._scan.candidates(padded, 64, probes)
    scores, labels = index._scan.search(index._master, padded, 32, 2, probes)
    exact = {index._ids.label_of[i]: s for i, s in oracle.search(q[:1], len(oracle))}
    own = candidates[0] & ((1 << LABEL_BITS) - 1)
    best = sorted(own.tolist(), key=lambda lab: -exact[lab])[:32]
    assert labels[0].tolist() == best
    np.testing.assert_allclose(scores[0], [exact[lab] for lab in best], rtol=1e-5, atol=1e-5)


def test_a_snapshot_with_a_pq_copy_restores_it_and_a_format_4_one_restores_without(tmp_path) -> None:
    index = FaissIndex(IndexConfig(scan_refine=4, **SCAN))
    final = churned(index)
    index.snapshot(tmp_path / "snap")
    assert json.loads((tmp_path / "snap" / "meta.json").read_text())["scan_pq"] == 16
    again = FaissIndex.restore(tmp_path / "snap", IndexConfig(scan_refine=4, **SCAN))
    assert again._scan is not None and again._scan.index.ntotal == len(final)
    queries = [np.stack([final[i] for i in list(final)[j:j + 2]]) for j in range(0, 30, 2)]
    assert again.search_many(queries, 15) == index.search_many(queries, 15)
    plain = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False))
    churned(plain)
    plain.snapshot(tmp_path / "plain")
    meta_path = tmp_path / "plain" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = 4  # as format 4 wrote it: no scan copy
    meta_path.write_text(json.dumps(meta))
    restored = FaissIndex.restore(tmp_path / "plain", IndexConfig(dim=DIM))
    assert restored._scan is None and restored.search_many(queries, 15) == plain.search_many(queries, 15)


def test_a_retrain_trains_a_new_pq_copy_over_the_new_lists() -> None:
    index = FaissIndex(IndexConfig(retrain_growth=2.0, **SCAN))
    ids, x = norm_varied(2000)
    index.upsert(ids[:800], x[:800])
    first = index._scan
    index.upsert(ids[800:], x[800:])  # 2.5x the trained size: retrained
    assert index._scan is not first and index._scan.index.nlist == index.nlist
    assert index._scan.index.ntotal == index._master.ntotal == 2000
