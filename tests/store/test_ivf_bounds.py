"""An IVF's changed rows placed through the triangle-inequality bound (store/ivf_bounds.py): every
row lands in the list a search of every centroid picks, and the index equals FAISS's own
update_vectors, round after round of small and large moves, new and removed rows."""

from __future__ import annotations

import faiss
import numpy as np

from store.config import IndexConfig
from store.faiss_index import FaissIndex
from store.ivf_bounds import ListBounds

DIM = 16


def _quantizer(nlist: int, seed: int) -> faiss.IndexFlatL2:
    q = faiss.IndexFlatL2(DIM)
    q.add(np.random.default_rng(seed).standard_normal((nlist, DIM)).astype(np.float32))
    return q


def test_moved_rows_take_the_nearest_list_kept_or_searched() -> None:
    quantizer = _quantizer(40, 0)
    bounds = ListBounds(quantizer.reconstruct_n(0, quantizer.ntotal), quantizer.search, 0.0)
    rng = np.random.default_rng(1)
    labels = np.arange(500, dtype=np.int64)
    vectors = rng.standard_normal((500, DIM)).astype(np.float32)
    bounds.place(labels, vectors)
    for step in range(12):
        scale = 0.02 if step % 3 else 0.5  # mostly small moves, some large
        new = (vectors + scale * rng.standard_normal(vectors.shape)).astype(np.float32)
        picked = rng.choice(500, 120, replace=False)
        got = bounds.move(labels[picked], new[picked], vectors[picked])
        _, want = quantizer.search(new[picked], 1)
        np.testing.assert_array_equal(got, want[:, 0])
        vectors[picked] = new[picked]
    assert 0 < bounds.kept < 12 * 120  # both the bound and the search were taken
    # a label the bounds never placed (restored index, label past the arrays) is searched
    far = np.array([10_000], np.int64)
    np.testing.assert_array_equal(bounds.move(far, vectors[:1], vectors[:1]), quantizer.search(vectors[:1], 1)[1][0])


def test_rows_drifting_in_small_steps_cross_into_other_lists_on_time() -> None:
    """Each step alone is small (kept by the bound), their sum crosses lists: the bound must
    shrink with every kept move, or a drifted row would stay in a list no longer nearest."""
    quantizer = _quantizer(30, 3)
    bounds = ListBounds(quantizer.reconstruct_n(0, quantizer.ntotal), quantizer.search, 0.0)
    rng = np.random.default_rng(4)
    labels = np.arange(300, dtype=np.int64)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    heading = rng.standard_normal((300, DIM)).astype(np.float32) * 0.03
    bounds.place(labels, vectors)
    changed = 0
    for _ in range(60):
        new = vectors + heading
        got = bounds.move(labels, new, vectors)
        np.testing.assert_array_equal(got, quantizer.search(new, 1)[1][:, 0])
        changed += int((got != quantizer.search(vectors, 1)[1][:, 0]).sum())
        vectors = new
    assert changed > 50 and bounds.kept > 300 * 20


def test_candidate_lists_keep_rows_between_two_lists_without_a_search() -> None:
    """Rows placed midway between two centroids, moved a little: with one list held each is
    searched (its second list is about as near as its own); with the next lists held too the
    nearest candidate is known from a handful of distances, including rows that cross from one
    list to the other, and every answer is the search's."""
    quantizer = _quantizer(50, 5)
    centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
    rng = np.random.default_rng(6)
    pairs = np.array([np.argsort(((centroids - c) ** 2).sum(1))[:2] for c in centroids])[rng.integers(0, 50, 400)]
    vectors = (centroids[pairs[:, 0]] + centroids[pairs[:, 1]]) / 2 + 0.01 * rng.standard_normal((400, DIM))
    vectors = vectors.astype(np.float32)
    labels = np.arange(400, dtype=np.int64)
    kept = {}
    for width in (1, 4):
        bounds = ListBounds(centroids, quantizer.search, 0.0, candidates=width)
        bounds.place(labels, vectors)
        moved = vectors.copy()
        for _ in range(5):
            new = (moved + 0.02 * rng.standard_normal(moved.shape)).astype(np.float32)
            np.testing.assert_array_equal(bounds.move(labels, new, moved), quantizer.search(new, 1)[1][:, 0])
            moved = new
        kept[width] = bounds.kept
    assert kept[1] < 0.2 * 5 * 400 < 0.8 * 5 * 400 < kept[4]


def _ivf(ids: list[str], vectors: np.ndarray) -> FaissIndex:
    index = FaissIndex(IndexConfig(dim=DIM, exact_threshold=100, rebuild_aside=False, norm_bands=(),
                                   nprobe=10_000))
    index.upsert(ids, vectors)
    index.finish_rebuild()
    assert index.mode == "ivf"
    return index


def _contents(index: FaissIndex) -> dict[int, tuple[int, bytes]]:
    """label -> (list, code) of every row of the IVF."""
    ivf = index._master
    out = {}
    for label in index._ids.id_of:
        at = ivf.direct_map.get(label)
        lst, offset = at >> 32, at & 0xFFFFFFFF
        out[label] = (lst, bytes(faiss.rev_swig_ptr(ivf.invlists.get_single_code(lst, offset), ivf.code_size)))
    return out


def test_an_ivf_moved_through_the_bounds_equals_update_vectors() -> None:
    rng = np.random.default_rng(2)
    ids = [f"i{k}" for k in range(3000)]
    vectors = rng.standard_normal((3000, DIM)).astype(np.float32)
    fast, plain = _ivf(ids, vectors), _ivf(ids, vectors)
    assert fast._bounds is not None
    plain._bounds = None  # FAISS's update_vectors: a search of every centroid per row
    labelled, removed = 3000, set()  # labels handed out; rows removed
    for step in range(6):
        picked = rng.choice(3000, 400, replace=False)
        scale = 0.01 if step % 2 else 0.3
        vectors[picked] += scale * rng.standard_normal((400, DIM)).astype(np.float32)
        changed = [ids[k] for k in picked]
        new = [f"n{step}-{k}" for k in range(5)]  # new rows take fresh labels, held ones keep theirs
        for index in (fast, plain):
            index.upsert(changed[:200], vectors[picked[:200]])
            index.upsert(changed[200:] + new, np.concatenate([vectors[picked[200:]], vectors[:5]]))
            index.remove(changed[:3])
        labelled += len(new) + len(removed & set(changed))
        removed = (removed - set(changed)) | set(changed[:3])
        ids += new
        vectors = np.concatenate([vectors, vectors[:5]])
    assert fast._bounds.kept > 0
    assert _contents(fast) == _contents(plain) and fast._ids.label_of == plain._ids.label_of
    assert fast._ids.next_label == labelled  # held rows kept their labels
    queries = rng.standard_normal((5, DIM)).astype(np.float32)
    assert fast.search_many([q[None] for q in queries], 20) == plain.search_many([q[None] for q in queries], 20)
