"""A 4-bit PQ fast-scan copy of a banded IVF's lists (FaissIndex, IndexConfig.scan_pq): the search
scans these codes and refines each query's candidates exactly with the IVF's own codes.

A banded search costs its scan: rows x 400 fp16 coordinates. Here every stored vector also holds
M 4-bit PQ codes (M / 2 bytes) in faiss' fast-scan layout, scanned with SIMD table lookups about
8x faster per row; a query keeps fetch x refine candidates by PQ score, and the IVF's fp16 codes
give their exact scores (a search of the query's candidate lists restricted to its candidates by
a bitmap), so results and their scores are the fp16 index's own whenever the candidates hold
them. bench/bench_index.py measures recall and time (layout `banded-pq`).

The codes sit in the lists of the IVF (same list numbers); each is stored under (list << 40 |
label) so that a candidate names its list. faiss' own adds cannot place a vector in a chosen list
of a fast-scan index (IndexIVF.add_core writes unpacked codes into the packed blocks, and
add_with_ids after a removal ORs new codes into stale ones), so codes are packed here with
faiss' CodePacker, one vector at a time, and removed by moving the list's last entry in.
"""

from __future__ import annotations

import faiss
import numpy as np

LABEL_BITS = 40  # labels below 2^40; list numbers above
_LABEL_MASK = (1 << LABEL_BITS) - 1
TRAIN_ROWS = 65_536  # PQ training sample, at most (16 centroids per sub-quantizer)


class PQScan:
    """The PQ fast-scan lists beside an IVF of `nlist` lists over `width` coordinates."""

    def __init__(self, index: faiss.IndexIVFPQFastScan) -> None:
        self.index = index
        self._centroids = index.quantizer.reconstruct_n(0, index.nlist)  # [nlist, width]: q.c
        self._lists = faiss.downcast_InvertedLists(index.invlists)
        self._packer = index.get_CodePacker()
        self._code = np.zeros(index.code_size, np.uint8)

    @classmethod
    def train(cls, stored: np.ndarray, centroids: np.ndarray, m: int, seed: int) -> PQScan:
        """Codes of M sub-quantizers trained on a sample of stored vectors [n, width], for the
        residuals from the IVF's centroids [nlist, width]."""
        width = stored.shape[1]
        if width % m:
            raise ValueError(f"{m} sub-quantizers do not divide {width} coordinates")
        quantizer = faiss.IndexFlatL2(width)  # holds the centroids; the bands choose the lists
        quantizer.add(np.ascontiguousarray(centroids, np.float32))
        index = faiss.IndexIVFPQFastScan(quantizer, width, len(centroids), m, 4, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()
        # residuals: one codebook over all norms clipped the rare largest norms (band 0), those
        # that win inner products; a list's centroid carries its band's norm and direction
        index.by_residual = True
        index.pq.cp.seed = seed
        sample = np.random.default_rng(seed).permutation(len(stored))[:TRAIN_ROWS]
        index.train(np.ascontiguousarray(stored[np.sort(sample)]))  # the PQ alone: the lists are given
        return cls(index)

    def empty(self) -> PQScan:
        """The same codebook, no vectors."""
        index = faiss.clone_index(self.index)  # faiss returns the subclass, and owns it
        index.reset()
        return PQScan(index)

    def add(self, labels: np.ndarray, stored: np.ndarray, lists: np.ndarray) -> None:
        """Add stored vectors [n, width] under labels to lists (the IVF's placement)."""
        codes = np.empty((len(labels), self.index.code_size), np.uint8)
        lists = np.ascontiguousarray(lists, np.int64)
        self.index.encode_vectors(len(labels), faiss.swig_ptr(np.ascontiguousarray(stored, np.float32)),
                                  faiss.swig_ptr(lists), faiss.swig_ptr(codes), False)
        order = np.argsort(lists, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(lists[order]) != 0])
        for rows in np.split(order, starts[1:]):
            lst = int(lists[rows[0]])
            size = self._lists.list_size(lst)
            self._lists.resize(lst, size + len(rows))
            ids = faiss.rev_swig_ptr(self._lists.get_ids(lst), size + len(rows))
            ids[size:] = (lst << LABEL_BITS) | labels[rows]
            block = self._lists.get_codes(lst)
            for at, row in enumerate(rows.tolist(), start=size):
                self._packer.pack_1_c(faiss.swig_ptr(codes[row]), at, block)
        self.index.ntotal += len(labels)

    def remove(self, labels: np.ndarray, lists: np.ndarray) -> None:
        """Remove labels held in lists (each label's list): the list's last entry fills each hole."""
        for lst, label in zip(np.asarray(lists).tolist(), np.asarray(labels).tolist(), strict=True):
            if lst < 0:
                continue
            size = self._lists.list_size(lst)
            ids = faiss.rev_swig_ptr(self._lists.get_ids(lst), size)
            at = np.flatnonzero(ids == ((lst << LABEL_BITS) | label))
            if not len(at):
                continue
            last, block = size - 1, self._lists.get_codes(lst)
            if at[0] != last:
                self._packer.unpack_1_c(block, last, faiss.swig_ptr(self._code))
                self._packer.pack_1_c(faiss.swig_ptr(self._code), int(at[0]), block)
                ids[at[0]] = ids[last]
            self._lists.resize(lst, last)
            self.index.ntotal -= 1

    def search(self, ivf: faiss.IndexIVF, padded: np.ndarray, k: int, factor: int,
               probes: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(scores, labels) [q, k] by ivf's codes of each query's k x factor best by PQ score over
        the probed lists (probes: lists [q, p], -1 padded, and their distances, unused)."""
        return refine(ivf, padded, k, self.candidates(padded, k * factor, probes))

    def candidates(self, padded: np.ndarray, k: int, probes: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """(list << 40 | label) [q, k] of the best PQ scores over the probed lists; -1 pads."""
        lists = probes[0]
        dists = np.einsum("qd,qpd->qp", padded, self._centroids[lists])  # q.c: the scores' first term
        self.index.nprobe = lists.shape[1]
        return self.index.search_preassigned(padded, k, lists, dists)[1]


def refine(ivf: faiss.IndexIVF, padded: np.ndarray, k: int, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) [q, k] of each query's best candidates by ivf's own codes: a search of the
    lists its candidates lie in, only their labels admitted (a bitmap over labels)."""
    scores = np.full((len(padded), k), -np.inf, np.float32)
    labels = np.full((len(padded), k), -1, np.int64)
    bits = np.zeros(int((candidates[candidates >= 0] & _LABEL_MASK).max(initial=0)) // 8 + 1, np.uint8)
    for q in range(len(padded)):
        found = candidates[q][candidates[q] >= 0]
        if not len(found):
            continue
        own = found & _LABEL_MASK
        np.bitwise_or.at(bits, own >> 3, np.left_shift(1, own & 7).astype(np.uint8))
        lists = np.unique(found >> LABEL_BITS)
        params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBitmap(bits), nprobe=len(lists))
        ivf.search_preassigned_c(1, faiss.swig_ptr(padded[q]), k, faiss.swig_ptr(lists),
                                 faiss.swig_ptr(np.zeros(len(lists), np.float32)), faiss.swig_ptr(scores[q]),
                                 faiss.swig_ptr(labels[q]), False, params)
        bits[own >> 3] = 0
    return scores, labels


def lists_of(ivf: faiss.IndexIVF, labels: np.ndarray) -> np.ndarray:
    """The list of ivf holding each label (its hashtable direct map); -1 where it holds none."""
    found = []
    for label in np.asarray(labels).tolist():
        try:
            found.append(ivf.direct_map.get(label) >> 32)
        except RuntimeError:  # faiss: key not found
            found.append(-1)
    return np.array(found, np.int64)
