"""VectorIndex semantics on every backend, FAISS against the numpy oracle, snapshots, recall."""

from __future__ import annotations

import time

import numpy as np
import pytest

from store.bruteforce_index import BruteForceIndex
from store.config import IndexConfig
from store.errors import VectorIndexError
from store.faiss_index import FaissIndex
from store.item_record import ItemRecord
from store.synthetic import ClusteredVectors
from store.typed_stores import ItemStore
from store.vector_index import VectorIndex, rebuild_from_store

DIM = 16
# nprobe >= nlist makes IVF exhaustive, so every backend must agree with the oracle exactly: with
# fp32 codes (the fp16 default rounds scores; test_faiss_bands.py holds it to an fp16 oracle)
VARIANTS = {
    "bruteforce": None,
    "faiss-flat": IndexConfig(dim=DIM),
    "faiss-ivf": IndexConfig(dim=DIM, exact_threshold=100, nprobe=10_000, rebuild_aside=False, ivf_codes="flat"),
    # the IVF trains on a thread while the flat index serves; either one must match the oracle
    "faiss-ivf-aside": IndexConfig(dim=DIM, exact_threshold=100, nprobe=10_000, ivf_codes="flat"),
    "faiss-replica": IndexConfig(dim=DIM, exact_threshold=100, nprobe=10_000, force_replica=True,
                                 rebuild_aside=False, ivf_codes="flat"),
}


def make_index(variant: str, dim: int = DIM) -> VectorIndex:
    cfg = VARIANTS[variant]
    return BruteForceIndex(dim) if cfg is None else FaissIndex(cfg)


@pytest.fixture(params=list(VARIANTS))
def index_factory(request: pytest.FixtureRequest):
    return lambda: make_index(request.param)


def _data(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    return [f"i{j}" for j in range(n)], rng.standard_normal((n, DIM)).astype(np.float32)


def assert_same_hits(got: list, want: list) -> None:
    """Same ids in the same order; scores equal up to float32 summation order."""
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-5, atol=1e-5)


def _oracle_topk(
    vectors: dict[str, np.ndarray], queries: np.ndarray, k: int, exclude=()
) -> list[str]:
    """Independent reference: max over queries per item, then sort."""
    ids = [i for i in vectors if i not in exclude]
    scores = (np.stack([vectors[i] for i in ids]) @ queries.T).max(axis=1)
    return [ids[j] for j in np.argsort(-scores, kind="stable")[:k]]


def test_matches_independent_oracle_with_multi_query(index_factory) -> None:
    ids, vecs = _data(600)
    index = index_factory()
    index.upsert(ids, vecs)
    queries = np.random.default_rng(1).standard_normal((4, DIM)).astype(np.float32)
    hits = index.search(queries, 20)
    assert [h[0] for h in hits] == _oracle_topk(dict(zip(ids, vecs, strict=True)), queries, 20)
    expected = (vecs[[int(h[0][1:]) for h in hits]] @ queries.T).max(axis=1)
    np.testing.assert_allclose([h[1] for h in hits], expected, rtol=1e-5)
    assert len({h[0] for h in hits}) == 20  # deduplicated across the four queries


def test_upsert_replaces(index_factory) -> None:
    ids, vecs = _data(300)
    index = index_factory()
    index.upsert(ids, vecs)
    target = np.zeros(DIM, np.float32)
    target[0] = 100.0
    index.upsert(["i7"], target[None])
    assert len(index) == 300
    assert index.search(target[None], 1)[0] == ("i7", pytest.approx(10_000.0))
    index.upsert(["i7"], -target[None])  # replaced again: now the worst match
    assert "i7" not in [h[0] for h in index.search(target[None], 299)]


def test_last_duplicate_in_a_batch_wins(index_factory) -> None:
    index = index_factory()
    up, down = np.ones((1, DIM), np.float32), -np.ones((1, DIM), np.float32)
    index.upsert(["a", "a", "b"], np.concatenate([up, down, up * 0.5]))
    assert [h[0] for h in index.search(up, 2)] == ["b", "a"]


def test_removed_items_are_never_returned(index_factory) -> None:
    ids, vecs = _data(400)
    index = index_factory()
    index.upsert(ids, vecs)
    gone = set(ids[::2])
    index.remove(list(gone) + ["never-there"])
    assert len(index) == 200 and "i0" not in index and "i1" in index
    queries = vecs[:8]
    hits = index.search(queries, 500)
    assert {h[0] for h in hits} == set(ids) - gone
    assert [h[0] for h in index.search(queries, 10)] == _oracle_topk(
        {i: v for i, v in zip(ids, vecs, strict=True) if i not in gone}, queries, 10
    )


def test_exclusion_still_yields_k(index_factory) -> None:
    ids, vecs = _data(500)
    index = index_factory()
    index.upsert(ids, vecs)
    q = vecs[3:5]
    top = [h[0] for h in index.search(q, 30)]
    hits = index.search(q, 10, exclude=set(top[:25]))
    assert len(hits) == 10 and not {h[0] for h in hits} & set(top[:25])
    assert [h[0] for h in hits] == top[25:] + _oracle_topk(
        dict(zip(ids, vecs, strict=True)), q, 15, exclude=set(top[:30])
    )[:5]


def test_search_many_equals_individual_searches(index_factory) -> None:
    ids, vecs = _data(500)
    index = index_factory()
    index.upsert(ids, vecs)
    rng = np.random.default_rng(5)
    users = [rng.standard_normal((q, DIM)).astype(np.float32) for q in (1, 3, 8)]
    excludes = [None, {"i1", "i2"}, set(ids[:50])]
    batched = index.search_many(users, 7, excludes)
    assert len(batched) == 3
    for got, user, exclude in zip(batched, users, excludes, strict=True):
        assert_same_hits(got, index.search(user, 7, exclude))


def test_users_with_long_and_short_seen_lists_in_one_batch_match_the_oracle(index_factory) -> None:
    ids, vecs = _data(500)
    index = index_factory()
    index.upsert(ids, vecs)
    vectors = dict(zip(ids, vecs, strict=True))
    rng = np.random.default_rng(9)
    users = [rng.standard_normal((q, DIM)).astype(np.float32) for q in (2, 1, 4, 3)]
    # each exclusion list holds that user's own best items, so a fetch sized for a shorter list
    # than its own would come back short
    excludes = [set(_oracle_topk(vectors, users[0], 200)), None,
                set(_oracle_topk(vectors, users[2], 3)), set(_oracle_topk(vectors, users[3], 60))]
    for got, user, exclude in zip(index.search_many(users, 7, excludes), users, excludes, strict=True):
        assert [h[0] for h in got] == _oracle_topk(vectors, user, 7, exclude or ())



def _recording_search(fetches: list[tuple[int, int]]):
    """A search(queries, fetch) whose labels are 0..fetch-1 by falling score; records (queries, fetch)."""
    def search(queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        fetches.append((len(queries), fetch))
        order = np.tile(np.arange(fetch), (len(queries), 1))
        return order, -order.astype(np.float32)
    return search

def test_grouped_search_fetches_per_user_need_rounded_to_a_power_of_two() -> None:
    from store.vector_index import search_grouped

    fetches: list[tuple[int, int]] = []
    search = _recording_search(fetches)
    names = {j: f"i{j}" for j in range(300)}
    excludes = [None, {f"i{j}" for j in range(100)}, {"i0"}, None]
    hits = search_grouped(search, np.zeros((6, 2), np.float32), [1, 2, 1, 2], 5, names, excludes, cap=200)
    assert sorted(fetches) == [(2, 128), (4, 8)]  # 5 + 100 -> 128 (user 1); 5 or 6 -> 8 (the rest)
    assert [h[0] for h in hits[1]] == [f"i{j}" for j in range(100, 105)]
    assert [h[0] for h in hits[2]] == ["i1", "i2", "i3", "i4", "i5"]
    assert [h[0] for h in hits[3]] == ["i0", "i1", "i2", "i3", "i4"]


def test_empty_and_bad_input(index_factory) -> None:
    index = index_factory()
    assert index.search(np.ones((2, DIM), np.float32), 5) == []
    with pytest.raises(VectorIndexError):
        index.upsert(["a"], np.ones((1, DIM + 1)))
    with pytest.raises(VectorIndexError):
        index.upsert(["a", "b"], np.ones((1, DIM)))
    index.upsert(["a"], np.ones((1, DIM)))
    with pytest.raises(VectorIndexError):
        index.search(np.ones((2, DIM - 1)), 5)


def test_exact_mode_equals_bruteforce_top_k() -> None:
    data = ClusteredVectors(dim=64, n_clusters=50, seed=3)
    vecs, ids = data.sample(5000, 1), [f"x{j}" for j in range(5000)]
    exact, oracle = FaissIndex(IndexConfig(dim=64)), BruteForceIndex(64)
    for idx in (exact, oracle):
        idx.upsert(ids, vecs)
    assert exact.mode == "flat"
    queries = [data.sample(4, 100 + u) for u in range(10)]
    for got, want in zip(
        exact.search_many(queries, 50), oracle.search_many(queries, 50), strict=True
    ):
        assert_same_hits(got, want)


def test_switches_mode_and_retrains_as_the_catalogue_changes() -> None:
    index = FaissIndex(
        IndexConfig(dim=DIM, exact_threshold=1000, retrain_growth=2.0, nprobe=10_000,
                    rebuild_aside=False, ivf_codes="flat")
    )
    oracle = BruteForceIndex(DIM)
    ids, vecs = _data(5000)
    for idx in (index, oracle):
        idx.upsert(ids[:900], vecs[:900])
    assert index.mode == "flat"
    for idx in (index, oracle):
        idx.upsert(ids[900:1200], vecs[900:1200])
    assert (index.mode, index._trained_size) == ("ivf", 1200)
    nlist_small = index.nlist
    for idx in (index, oracle):
        idx.upsert(ids[1200:], vecs[1200:])
    assert index._trained_size == 5000 and index.nlist > nlist_small  # retrained after growth
    q = vecs[:3]
    assert_same_hits(index.search(q, 25), oracle.search(q, 25))
    for idx in (index, oracle):
        idx.remove(ids[400:])
    assert index.mode == "flat" and len(index) == 400
    assert [h[0] for h in index.search(q, 25)] == [h[0] for h in oracle.search(q, 25)]


def test_replica_resyncs_after_many_removals() -> None:
    cfg = IndexConfig(dim=DIM, force_replica=True, replica_resync_fraction=0.05)
    index, (ids, vecs) = FaissIndex(cfg), _data(1000)
    index.upsert(ids, vecs)
    index.search(vecs[:1], 5)
    index.remove(ids[:40])  # 4% dead: the replica stays and filters them
    assert index._replica is not None and index._replica_dead == 40
    assert not {h[0] for h in index.search(vecs[:40], 5)} & set(ids[:40])
    index.remove(ids[40:60])  # past 5%: dropped and re-cloned on the next search
    assert index._replica is None
    index.search(vecs[:1], 5)
    assert index._replica.ntotal == 940 and index._replica_dead == 0


@pytest.mark.parametrize("threshold", [10_000, 100])
def test_snapshot_restore_gives_identical_results(tmp_path, threshold: int) -> None:
    index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=threshold, nprobe=4))
    ids, vecs = _data(2000)
    index.upsert(ids, vecs)
    index.remove(ids[:100])
    index.finish_rebuild()  # else the IVF may swap in between the snapshot and the comparison
    index.snapshot(tmp_path / "snap", offsets={0: 123, 3: 7})
    index.snapshot(tmp_path / "snap", offsets={0: 124, 3: 7})  # overwrite in place
    restored = FaissIndex.restore(
        tmp_path / "snap", IndexConfig(dim=DIM, exact_threshold=threshold, nprobe=4)
    )
    assert restored.offsets == {0: 124, 3: 7} and restored.mode == index.mode
    queries = [vecs[j : j + 3] for j in range(0, 60, 3)]
    assert restored.search_many(queries, 30) == index.search_many(queries, 30)
    restored.upsert(["new"], vecs[:1] * 10)  # labels continue after the snapshot's
    restored.remove(["i500"])
    assert restored.search(vecs[:1], 1)[0][0] == "new" and "i500" not in restored


def test_restore_rejects_damaged_snapshots(tmp_path) -> None:
    index = FaissIndex(IndexConfig(dim=DIM))
    index.upsert(*_data(50))
    index.snapshot(tmp_path / "snap")
    with pytest.raises(VectorIndexError):
        FaissIndex.restore(tmp_path / "snap", IndexConfig(dim=DIM + 1))
    (tmp_path / "snap" / "ids.bin").write_bytes(b"TRID\x01garbage")
    with pytest.raises(VectorIndexError):
        FaissIndex.restore(tmp_path / "snap")
    with pytest.raises(VectorIndexError):
        FaissIndex.restore(tmp_path / "missing")


def test_rebuild_from_item_store() -> None:
    items, (ids, vecs) = ItemStore.open(None), _data(300)
    for i, v in zip(ids, vecs, strict=True):
        items.put(ItemRecord(i, vector=v), offsets={0: int(i[1:]) + 1})
    items.put(ItemRecord("no-vector"))  # items without a retrieval vector are skipped
    index = FaissIndex(IndexConfig(dim=DIM))
    assert rebuild_from_store(index, items) == {0: 300}
    assert len(index) == 300
    oracle = BruteForceIndex(DIM)
    oracle.upsert(ids, vecs)
    assert [h[0] for h in index.search(vecs[:2], 10)] == [h[0] for h in oracle.search(vecs[:2], 10)]


@pytest.mark.slow  # 100k vectors, an IVF trained and a flat one
def test_approximate_recall_at_100_on_100k_384d() -> None:
    """IVF recall@100 >= 0.95 vs exact, 100k clustered 384-d vectors (uniform random has no
    neighbourhoods, so IVF recall on it is hopeless at any useful nprobe)."""
    started = time.perf_counter()
    data = ClusteredVectors(dim=384, seed=7)
    vecs, ids = data.sample(100_000, 1), [f"v{j}" for j in range(100_000)]
    approx = FaissIndex(IndexConfig(dim=384, exact_threshold=50_000, nprobe=32))
    exact = FaissIndex(IndexConfig(dim=384, exact_threshold=10**9))
    approx.upsert(ids, vecs)
    exact.upsert(ids, vecs)
    approx.finish_rebuild()
    assert (approx.mode, exact.mode) == ("ivf", "flat")
    queries = [q[None] for q in data.sample(40, 2)]
    got, want = approx.search_many(queries, 100), exact.search_many(queries, 100)
    recall = np.mean(
        [len({g[0] for g in a} & {w[0] for w in b}) / 100 for a, b in zip(got, want, strict=True)]
    )
    assert recall >= 0.95, recall
    assert time.perf_counter() - started < 60


def test_bounded_fetch_does_not_grow_with_the_seen_list() -> None:
    from store.config import FetchBound
    from store.vector_index import search_grouped

    fetches: list[tuple[int, int]] = []
    search = _recording_search(fetches)
    names = {j: f"i{j}" for j in range(5000)}
    # first pass 10 x 2 -> 32 for the users with exclusions. User 0: 995 seen, all but 64..68:
    # none of its 32 survives, the second pass (1,005 needed, limit 128) finds 5 and accepts
    # fewer than k. User 1: the best 100 seen: the second pass (110 -> 128) finds 10. User 2:
    # nothing seen: 10 -> 16, no second pass.
    excludes = [{f"i{j}" for j in range(1000)} - {f"i{j}" for j in range(64, 69)},
                {f"i{j}" for j in range(100)}, None]
    bound = FetchBound(factor=2, limit=128)
    hits = search_grouped(search, np.zeros((5, 2), np.float32), [2, 2, 1], 10, names, excludes,
                          cap=5000, bound=bound)
    assert max(f for _, f in fetches) <= 128  # unbounded: 1,024 for user 0
    assert sorted(fetches) == [(1, 16), (4, 32), (4, 128)]  # 10 x 2 -> 32; one second pass of 128
    assert [h[0] for h in hits[0]] == [f"i{j}" for j in range(64, 69)]  # accepts fewer than k
    assert [h[0] for h in hits[1]] == [f"i{j}" for j in range(100, 110)]
    assert [h[0] for h in hits[2]] == [f"i{j}" for j in range(10)]


def test_a_format_1_snapshot_of_an_ivf_without_the_extra_coordinate_still_serves(tmp_path) -> None:
    """Snapshots written before the IVF stored the extra coordinate (format 1: a dim-wide IVF
    with an inner-product quantizer) restore and keep serving, updates included."""
    import json

    import faiss

    from store.binary import Writer

    ids, vecs = _data(400)
    old = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, 8, faiss.METRIC_INNER_PRODUCT)
    old.train(vecs)
    old.set_direct_map_type(faiss.DirectMap.Hashtable)
    old.add_with_ids(vecs, np.arange(400, dtype=np.int64))
    snap = tmp_path / "snap"
    snap.mkdir()
    faiss.write_index(old, str(snap / "index.faiss"))
    w = Writer()
    w.texts(ids)
    w.array(np.arange(400, dtype=np.int64), "<i8")
    (snap / "ids.bin").write_bytes(w.frame(b"TRID", 1))
    (snap / "meta.json").write_text(json.dumps({"format": 1, "dim": DIM, "mode": "ivf", "trained_size": 400,
                                                "next_label": 400, "offsets": {"0": 400}}))
    index = FaissIndex.restore(snap, IndexConfig(dim=DIM, exact_threshold=100, nprobe=10_000))
    assert index.mode == "ivf" and index.offsets == {0: 400} and len(index) == 400
    oracle = BruteForceIndex(DIM)
    oracle.upsert(ids, vecs)
    for idx in (index, oracle):
        idx.upsert(["new"], vecs[:1] * 3)
        idx.remove(ids[:50])
    queries = [vecs[j:j + 2] for j in range(0, 40, 2)]
    for got, want in zip(index.search_many(queries, 20), oracle.search_many(queries, 20), strict=True):
        assert_same_hits(got, want)
    index.snapshot(tmp_path / "again")  # written in the current format, read back the same
    again = FaissIndex.restore(tmp_path / "again", IndexConfig(dim=DIM, exact_threshold=100, nprobe=10_000))
    assert again.search_many(queries, 20) == index.search_many(queries, 20)


def test_default_nprobe_probes_the_lists_that_hold_about_scan_rows_vectors() -> None:
    ids, vecs = _data(3000)
    one_ivf = dict(dim=DIM, exact_threshold=100, rebuild_aside=False, norm_bands=(), scan_rows_exponent=0.0)
    small = FaissIndex(IndexConfig(scan_rows=300, **one_ivf))
    small.upsert(ids, vecs)
    assert small.mode == "ivf" and small.nprobe == -(-300 * small.nlist // 3000)  # ceil
    # a budget of the whole catalogue probes every list: the IVF answers as the exact oracle
    whole = FaissIndex(IndexConfig(scan_rows=3000, **one_ivf))
    whole.upsert(ids, vecs)
    assert whole.nprobe == whole.nlist
    oracle = BruteForceIndex(DIM)
    oracle.upsert(ids, vecs)
    for got, want in zip(whole.search_many([vecs[:3], vecs[5:6]], 40), oracle.search_many([vecs[:3], vecs[5:6]], 40),
                         strict=True):
        assert_same_hits(got, want)
    whole.set_nprobe(2)  # an explicit nprobe wins over the budget
    assert whole.nprobe == 2


def test_changed_vectors_overwritten_in_place_search_as_a_fresh_index(index_factory) -> None:
    """Rows changed many times, some removed and added between (so the exact index overwrites
    some in place and re-adds others): every search equals a fresh index of the final vectors."""
    ids, vecs = _data(300)
    index, rng = index_factory(), np.random.default_rng(5)
    index.upsert(ids, vecs)
    final = dict(zip(ids, vecs, strict=True))
    for step in range(6):
        picked = [ids[j] for j in rng.choice(300, 40, replace=False)]
        new = rng.standard_normal((40, DIM)).astype(np.float32)
        index.upsert(picked, new)
        final.update(zip(picked, new, strict=True))
        if step % 2:
            index.remove(picked[:5])
            index.upsert(picked[:5] + [f"new{step}"], new[:6])
            final.update(zip(picked[:5] + [f"new{step}"], new[:6], strict=True))
    fresh = make_index("bruteforce")
    fresh.upsert(list(final), np.stack(list(final.values())))
    queries = [rng.standard_normal((2, DIM)).astype(np.float32) for _ in range(5)]
    assert len(index) == len(final)
    for got, want in zip(index.search_many(queries, 30), fresh.search_many(queries, 30), strict=True):
        assert_same_hits(got, want)


def test_an_ivf_moves_changed_rows_to_their_nearest_list_and_keeps_their_labels() -> None:
    """Changed vectors of held items, in the IVF: each item keeps its label and lies in the list
    its new vector is nearest to (where a fresh add puts it), with the new vector as its code."""
    import faiss

    from store.faiss_index import augment

    ids, vecs = _data(2000)
    index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, norm_bands=()))
    index.upsert(ids, vecs)
    index.finish_rebuild()
    ivf = index._master
    assert index.mode == "ivf" and isinstance(ivf, faiss.IndexIVF)
    labels = dict(index._ids.label_of)
    rng = np.random.default_rng(3)
    picked = [ids[j] for j in rng.choice(2000, 300, replace=False)]
    new = rng.standard_normal((300, DIM)).astype(np.float32) * 2  # most lists change
    index.upsert(picked, new)
    assert index._ids.label_of == labels and ivf.ntotal == 2000
    _, nearest = ivf.quantizer.search(augment(new, index._norm), 1)
    for item_id, vec, want in zip(picked, new, nearest[:, 0].tolist(), strict=True):
        at = ivf.direct_map.get(labels[item_id])
        lst, offset = at >> 32, at & 0xFFFFFFFF
        assert lst == want
        code = faiss.rev_swig_ptr(ivf.invlists.get_single_code(lst, offset), ivf.code_size)
        np.testing.assert_array_equal(np.frombuffer(bytes(code), np.float32)[:DIM], vec)
