"""Norm bands of an IVF (FaissIndex): items split by vector norm, each band clustered on its own, and a
query's row budget spent mostly on the bands of the largest norms.

Inner-product top-k on the encoder's item vectors is decided by norm as much as by direction:
on the production feed's encoded items, 90% of a user's exact top-100 (10 UPE codes) lie in the
10% of items with the largest norms, 99% in the top 23% (99% in the top 9% at 1M items). One
IVF over all items spreads those few items over most of its lists, so a recall of 0.95 needs most
lists scanned. Here each band (by default the top 3%, 7%, 20% and the other 70% of norms at
training) has its own lists, from a k-means of its items under its own extra coordinate
(store/faiss_index.py: the MIPS-to-L2 reduction with the band's largest norm), and a query
probes each band for a share of the row budget that halves from one band to the next (Norm-
Ranging LSH, Yan et al., NeurIPS 2018, does the same for hashing). bench/bench_index.py measures
it: at 100k items recall@100 0.986 for 8 ms per engagement where one IVF needed 15 ms for 0.969.

All bands' lists are the lists of one faiss IVF (band b owns lists start_b..start_b + nlist_b), so
removal, reconstruction, copies and snapshots are the IVF's own; only the choice of lists is made
here, on insertion (add_core) and search (search_preassigned).

Two more choices, both measured at 1M items in bench/bench_index.py (one thread):
- codes `fp16`: the lists hold fp16 vectors (IndexIVFScalarQuantizer) padded with zeros to a
  multiple of 16 coordinates, where faiss' SIMD scan applies (at 385 it falls back to scalar code
  and is 5x slower than fp32): half the memory and the memory traffic of a scan, which is what a
  scan costs. The engine reranks with the item store's exact vectors; fp16 moves scores by ~2e-4.
- pooled probes: a user's queries share one row budget (scan_rows x its queries), spent on the
  (query, list) pairs of every band in the order of their estimated best score: q.c plus
  `spread` x |q| x the list's radius (members of a list sit on a sphere of the band's radius
  R around their centroid c, at a distance sqrt(R^2 - |c|^2) on average). Of a user's exact
  top-100, one of its 10 queries wins about 63% and three about 93%: equal budgets per query
  spent most rows where nothing was to be found.
- merged queries: a user's near-duplicate queries (merge_queries) are searched once, with the
  user's whole budget; 10 codes of the packaged backbone's untrained heads re-read 84% of the
  rows they scanned (1M items: 0.957 in 8.4 ms at 15k rows, where 25k unmerged gave 0.955 in 10.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from .faiss_scan import PQScan

CODES = ("flat", "fp16")
_SIMD_WIDTH = 16  # faiss' scalar-quantizer scan is vectorised only for dimensions that divide by this

# Bands pay only where norms differ: the top band's smallest norm must be this much above the
# median (on the encoder's items it is 1.5x; unit vectors, the cosine case, give 1.0).
MIN_NORM_SPREAD = 1.1


def worth_banding(norms: np.ndarray, cuts: tuple[float, ...]) -> bool:
    """Whether norms vary enough for bands (else one IVF serves better: the cosine case)."""
    if not cuts or not len(norms):
        return False
    top, median = np.quantile(norms, [1.0 - cuts[0], 0.5])
    return bool(top >= MIN_NORM_SPREAD * median)


@dataclass(frozen=True)
class BandPlan:
    """How to cut and cluster: norm-rank cuts (shares of items from the largest norm down) and
    the options the IVF's own clustering takes."""

    cuts: tuple[float, ...]
    nlist_per_sqrt: float
    iterations: int
    max_points_per_list: int
    seed: int
    codes: str = "flat"


def stored_width(dim: int, codes: str) -> int:
    """Coordinates of a stored vector: dim + the extra one, padded for the fp16 scan's SIMD."""
    if codes not in CODES:
        raise ValueError(f"unknown IVF codes {codes!r} (one of {CODES})")
    return dim + 1 if codes == "flat" else -(-(dim + 1) // _SIMD_WIDTH) * _SIMD_WIDTH


class NormBands:
    """The bands of one trained IVF: norm edges, each band's radius R and its centroids."""

    def __init__(self, edges: np.ndarray, radii: np.ndarray, fractions: np.ndarray,
                 centroids: list[np.ndarray], codes: str = "flat") -> None:
        self.codes = codes
        self.width = centroids[0].shape[1]  # stored coordinates (stored_width)
        self.edges = np.asarray(edges, np.float32)  # lower norm bound of bands 0..B-2, descending
        self.radii = np.asarray(radii, np.float32)  # R of each band's extra coordinate
        self.fractions = np.asarray(fractions, np.float64)  # share of the items at training
        self.quantizers = []
        for c in centroids:
            q = faiss.IndexFlatL2(c.shape[1])
            q.add(np.ascontiguousarray(c, np.float32))
            self.quantizers.append(q)
        self.nlists = np.array([len(c) for c in centroids], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.nlists)[:-1]]).astype(np.int64)
        flat = np.vstack(centroids).astype(np.float32)
        self._centroids_t = np.ascontiguousarray(flat.T)  # [width, nlist]: all lists' q.c at once
        band = np.repeat(np.arange(len(centroids)), self.nlists)
        # a list's members lie at about this distance from its centroid (module doc)
        self._list_radius = np.sqrt(np.maximum(self.radii[band] ** 2 - np.einsum("ij,ij->i", flat, flat), 0.0))
        self._list_band = band

    @property
    def nlist(self) -> int:
        return int(self.nlists.sum())

    def centroids(self) -> np.ndarray:
        """Every list's centroid [nlist, width], in list order."""
        return np.ascontiguousarray(self._centroids_t.T)

    @property
    def norm(self) -> float:
        """The largest radius: queries get a 0 extra coordinate when it is non-zero."""
        return float(self.radii.max())

    def band_of(self, norms: np.ndarray) -> np.ndarray:
        """Band of each norm: 0 for the largest norms."""
        return np.searchsorted(-self.edges, -np.asarray(norms, np.float32), side="left")

    def place(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vectors with their band's extra coordinate [n, d + 1], the list of each [n])."""
        sq = np.einsum("ij,ij->i", vectors, vectors)
        band = self.band_of(np.sqrt(sq))
        extra = np.sqrt(np.maximum(self.radii[band] ** 2 - sq, 0.0)).astype(np.float32)
        stored = _widen(np.hstack([vectors, extra[:, None]]), self.width)
        lists = np.empty(len(vectors), np.int64)
        for b in np.unique(band).tolist():
            rows = np.flatnonzero(band == b)
            _, nearest = self.quantizers[b].search(stored[rows], 1)
            lists[rows] = nearest[:, 0] + self.starts[b]
        return stored, lists

    def probes(self, padded: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lists, their distances) each padded query [q, d + 1] probes: in band b the lists
        holding about rows[b] vectors; -1 pads unused places."""
        parts, dists = [], []
        for b, quantizer in enumerate(self.quantizers):
            if rows[b] <= 0:
                continue
            dist, lists = quantizer.search(padded, int(rows[b]))
            parts.append(np.where(lists >= 0, lists + self.starts[b], -1))
            dists.append(dist)
        return np.ascontiguousarray(np.hstack(parts)), np.ascontiguousarray(np.hstack(dists))

    def pooled_probes(self, padded: np.ndarray, counts: list[int], ntotal: int, scan_rows: int,
                      spread: float, weights: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lists, their q.c) [q, p] each padded query probes when each user's queries (counts:
        consecutive rows per user) share scan_rows x weights[u] (by default its number of rows;
        more where merge_queries left fewer) (module doc); -1 pads."""
        scores = padded @ self._centroids_t  # [q, nlist]
        key = scores + spread * np.linalg.norm(padded, axis=1, keepdims=True) * self._list_radius
        rows = np.maximum(max(ntotal, 1) * self.fractions / self.nlists, 1.0)[self._list_band]
        weights = counts if weights is None else weights
        chosen = [self._spend(key[a:b], rows, scan_rows * w) + (a, 0)
                  for a, b, w in zip(np.cumsum([0, *counts[:-1]]), np.cumsum(counts), weights, strict=True) if b > a]
        pairs = np.vstack(chosen)
        per_query = np.bincount(pairs[:, 0], minlength=len(padded))
        lists = np.full((len(padded), max(int(per_query.max()), 1)), -1, np.int64)
        dists = np.zeros(lists.shape, np.float32)
        pairs = pairs[np.lexsort((-key[pairs[:, 0], pairs[:, 1]], pairs[:, 0]))]
        place = np.arange(len(pairs)) - np.repeat(np.cumsum(per_query) - per_query, per_query)
        lists[pairs[:, 0], place] = pairs[:, 1]
        dists[pairs[:, 0], place] = scores[pairs[:, 0], pairs[:, 1]]
        return lists, dists

    @staticmethod
    def _spend(key: np.ndarray, rows: np.ndarray, budget: float) -> np.ndarray:
        """(query, list) pairs [p, 2] of one user, best key first, until their rows reach budget
        (at least one pair)."""
        flat = -key.ravel()
        take = min(len(flat), int(budget / rows.min()) + 1)
        best = np.argpartition(flat, take - 1)[:take] if take < len(flat) else np.arange(len(flat))
        best = best[np.argsort(flat[best], kind="stable")]
        spent = np.cumsum(rows[best % key.shape[1]])
        best = best[: max(1, int(np.searchsorted(spent, budget, side="right")))]
        return np.stack(np.divmod(best, key.shape[1]), axis=1)

    def lists_per_band(self, ntotal: int, scan_rows: int, nprobe: int | None) -> np.ndarray:
        """Lists probed in each band: a fixed nprobe split by the bands' list counts, or
        scan_rows split in shares halving from band 0, each band's share in lists of that band's
        average size (at least one list, at most all of the band's)."""
        if nprobe:
            want = np.ceil(nprobe * self.nlists / self.nlist)
        else:
            shares = 0.5 ** np.arange(len(self.nlists))
            rows = scan_rows * shares / shares.sum()
            per_list = np.maximum(max(ntotal, 1) * self.fractions / self.nlists, 1.0)
            want = np.ceil(rows / per_list)
        return np.clip(want, 1, self.nlists).astype(np.int64)

    # ---- training and persistence ---------------------------------------------------------

    @classmethod
    def train(cls, vectors: np.ndarray, norms: np.ndarray, plan: BandPlan) -> NormBands:
        """Bands from the norms of every vector, each clustered on a bounded sample of its own."""
        order = np.argsort(-norms, kind="stable")
        bounds = [0, *(int(round(c * len(norms))) for c in plan.cuts), len(norms)]
        bounds = sorted(set(min(max(b, 0), len(norms)) for b in bounds))
        edges, radii, fractions, centroids = [], [], [], []
        rng = np.random.default_rng(plan.seed)
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            rows = np.sort(order[lo:hi])
            radius = float(norms[order[lo]])
            nlist = max(1, min(int(round(plan.nlist_per_sqrt * math.sqrt(len(rows)))), len(rows) // 39))
            sample = np.sort(rng.permutation(rows)[: nlist * plan.max_points_per_list])
            centroids.append(_kmeans(_augment(vectors[sample], radius), nlist, plan))
            radii.append(radius)
            fractions.append(len(rows) / len(norms))
            if hi < len(norms):
                edges.append(float(norms[order[hi - 1]]))
        width = stored_width(vectors.shape[1], plan.codes)
        return cls(np.array(edges), np.array(radii), np.array(fractions),
                   [_widen(c, width) for c in centroids], plan.codes)

    def meta(self) -> dict:
        """What a snapshot stores beside the IVF (whose quantizer holds every centroid)."""
        return {"edges": self.edges.tolist(), "radii": self.radii.tolist(),
                "fractions": self.fractions.tolist(), "nlists": self.nlists.tolist(), "codes": self.codes}

    @classmethod
    def from_meta(cls, meta: dict, quantizer: faiss.Index) -> NormBands:
        """The bands a snapshot stored, the centroids read back from the IVF's quantizer."""
        nlists = [int(n) for n in meta["nlists"]]
        if sum(nlists) != quantizer.ntotal or len(meta["radii"]) != len(nlists):
            raise ValueError("norm bands do not match the index's lists")
        flat = quantizer.reconstruct_n(0, quantizer.ntotal)
        starts = np.concatenate([[0], np.cumsum(nlists)]).astype(int)
        return cls(np.array(meta["edges"]), np.array(meta["radii"]), np.array(meta["fractions"]),
                   [flat[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)],
                   meta.get("codes", "flat"))  # format 3 snapshots: flat codes

    def empty_ivf(self) -> faiss.IndexIVF:
        """An empty IVF over the stored width whose lists are the bands' lists, its codes fp32
        (IndexIVFFlat) or fp16 (IndexIVFScalarQuantizer, no residuals)."""
        quantizer = faiss.IndexFlatL2(self.width)
        for q in self.quantizers:
            quantizer.add(q.reconstruct_n(0, q.ntotal))
        if self.codes == "fp16":
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, self.width, self.nlist, faiss.ScalarQuantizer.QT_fp16,
                                                faiss.METRIC_INNER_PRODUCT, False)
        else:
            ivf = faiss.IndexIVFFlat(quantizer, self.width, self.nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.own_fields = True
        quantizer.this.disown()
        ivf.is_trained = True
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return ivf


def merge_queries(queries: np.ndarray, min_cos: float) -> np.ndarray:
    """One user's queries [q, d] less those within min_cos (cosine) of a kept one of larger norm,
    in their order. Pooled probes spend near-duplicates' rows on the same lists (their keys are
    nearly equal), where the kept query, of the larger scores, finds the same top items."""
    if len(queries) < 2:
        return queries
    norms = np.linalg.norm(queries, axis=1)
    unit = queries / np.maximum(norms, 1e-12)[:, None]
    similar = unit @ unit.T >= min_cos
    keep: list[int] = []
    for i in np.argsort(-norms, kind="stable").tolist():
        if not keep or not similar[i, keep].any():
            keep.append(i)
    return queries if len(keep) == len(queries) else queries[np.sort(keep)]


def add_placed(ivf: faiss.Index, bands: NormBands, labels: np.ndarray, vectors: np.ndarray,
               scan: PQScan | None = None) -> None:
    """Add vectors [n, d] under labels to the bands' lists of ivf (and of its PQ scan copy)."""
    if not len(labels):
        return
    stored, lists = bands.place(vectors)
    labels = np.ascontiguousarray(labels, np.int64)
    faiss.extract_index_ivf(ivf).add_core(len(labels), faiss.swig_ptr(stored), faiss.swig_ptr(labels),
                                          faiss.swig_ptr(lists))
    if scan is not None:
        scan.add(labels, stored, lists)


def search_placed(ivf: faiss.Index, bands: NormBands, padded: np.ndarray, k: int,
                  probes: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) [q, k] of padded queries over the lists chosen for them (bands.probes or
    bands.pooled_probes: lists and their distances)."""
    lists, dists = probes
    inner = faiss.extract_index_ivf(ivf)
    inner.nprobe = lists.shape[1]
    return inner.search_preassigned(padded, k, lists, dists)


def _widen(x: np.ndarray, width: int) -> np.ndarray:
    """x [n, c] with zero columns up to width (the fp16 codes' SIMD padding)."""
    x = np.asarray(x, np.float32)
    if x.shape[1] < width:
        x = np.hstack([x, np.zeros((len(x), width - x.shape[1]), np.float32)])
    return np.ascontiguousarray(x)


def _augment(vectors: np.ndarray, radius: float) -> np.ndarray:
    sq = np.einsum("ij,ij->i", vectors, vectors)
    extra = np.sqrt(np.maximum(radius * radius - sq, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([vectors, extra[:, None]]))


def _kmeans(points: np.ndarray, k: int, plan: BandPlan) -> np.ndarray:
    if k == 1:
        return points.mean(axis=0, keepdims=True)
    km = faiss.Kmeans(points.shape[1], k, niter=plan.iterations, seed=plan.seed,
                      max_points_per_centroid=plan.max_points_per_list)
    km.train(points)
    return km.centroids
