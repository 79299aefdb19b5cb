"""FAISS-backed VectorIndex: exact IndexFlatIP when small, IVF-Flat when large, GPU when present.

The IVF stores each item with one more coordinate, sqrt(R^2 - |x|^2) for the largest norm R at
training, and queries get a 0 there: the scores are the exact inner products, but every stored
vector has norm R, so the k-means (L2) and the lists a query probes follow the inner product
rather than the norms (the usual reduction of maximum inner product to nearest-neighbour
search). On the production feed's encoded items an inner-product k-means made lists of very
unequal sizes; this index reaches the same recall@100 for a third of the time or less
(bench/bench_index.py). On the CPU the IVF's lists are cut into norm bands (store/faiss_bands.py):
most of an inner-product top-k lies among the largest norms, and the row budget goes there first;
the banded lists hold fp16 codes, and a user's queries pool their row budget.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path

import faiss
import numpy as np

from durable import replace_dir

from .binary import Writer, open_frame
from .config import FetchBound, IndexConfig
from .errors import StateCodecError, VectorIndexError
from .faiss_bands import (
    BandPlan,
    NormBands,
    add_placed,
    merge_queries,
    search_placed,
    worth_banding,
)
from .faiss_scan import TRAIN_ROWS, PQScan, lists_of
from .index_copy import ChunkedCopy
from .index_rebuild import AsideRebuild, Job, start_thread
from .ivf_bounds import ListBounds
from .thread_priority import lower_thread_priority
from .upsert_plan import UpsertPlan
from .vector_index import Hit, IdMap, as_query_batch, dedupe_last, search_grouped

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 5  # 5: a PQ scan copy (scan.faiss); 4: fp16 bands; 3: norm bands; 2: mips_norm
_READS = {1, 2, 3, 4, 5}
_IDS_MAGIC = b"TRID"
_GPU_MAX_K = 2048  # faiss GPU top-k limit
_PARALLEL_ROWS = 65_536  # changes of fewer rows run on one thread (serial)


def exact_knn(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product top-k of each query over `vectors`: (scores, row numbers)."""
    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)


def gpu_available() -> bool:
    """True when this faiss build sees at least one GPU."""
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


@contextmanager
def serial(rows: int) -> Iterator[None]:
    """FAISS on the calling thread alone while it changes fewer than _PARALLEL_ROWS rows: for a
    small change a parallel region's start and barrier cost more than the work, milliseconds when
    other processes hold the cores (the thread count is per calling thread in OpenMP)."""
    if rows >= _PARALLEL_ROWS:
        yield
        return
    was = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(was)


class FaissIndex:
    """Mutable CPU master index, plus a search replica (GPU copy) that is patched incrementally."""

    def __init__(self, config: IndexConfig | None = None,
                 start_aside: Callable[[Job], None] = start_thread) -> None:
        """start_aside runs a background rebuild's job (tests pass one that runs it on demand)."""
        self.config = config or IndexConfig()
        self.dim = self.config.dim
        self.use_gpu = gpu_available() if self.config.use_gpu is None else self.config.use_gpu
        if self.use_gpu and not gpu_available():
            raise VectorIndexError("IndexConfig.use_gpu=True but faiss sees no GPU")
        self._ids = IdMap()
        self._master: faiss.Index = self._new_flat()
        self._norm = 0.0  # R of the master's extra coordinate (module doc); 0: none (flat, old IVF)
        self._bands: NormBands | None = None  # the IVF's norm bands (None: flat, GPU or unbanded)
        self._bounds: ListBounds | None = None  # lists of an unbanded IVF's rows (store/ivf_bounds.py)
        self._scan: PQScan | None = None  # the bands' PQ fast-scan copy (IndexConfig.scan_pq)
        self.mode = "flat"
        self._trained_size = 0
        self._replica: faiss.Index | None = None
        self._replica_dead = 0  # labels still in the replica but removed from the master
        self._gpu_res = faiss.StandardGpuResources() if self.use_gpu else None
        self.offsets: dict[int, int] = {}
        self._nprobe = self.config.nprobe
        self._scan_rows = self.config.scan_rows
        self._scan_refine = self.config.scan_refine
        self._start_aside = start_aside
        self._rebuild: AsideRebuild | None = None  # a rebuild in flight (the master still serves)
        self._journals: list[AsideRebuild | ChunkedCopy] = []  # copies in flight: told every change
        self._retry_at = 0  # after a failed rebuild, the size at which to try again
        self._changes = 0  # counts changes of the master or its bounds: a plan is exact while it holds

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids.label_of

    @property
    def nlist(self) -> int:
        return self._master.nlist if self.mode == "ivf" else 0

    # ---- mutation -------------------------------------------------------------------------

    def upsert(self, item_ids: list[str], vectors: np.ndarray, plan: UpsertPlan | None = None) -> None:
        """Add or overwrite items' vectors; plan: plan_upsert's for the same ids and vectors (its
        reads are not done again while it is exact; otherwise it is ignored)."""
        self._changes += 1
        if plan is not None and plan.owner is self and plan.changes == self._changes - 1 and plan.ids == item_ids:
            self._write_plan(plan)
            if plan.placed is not None:  # the catalogue grew
                self._maybe_rebuild()
            return
        item_ids, vectors = dedupe_last(item_ids, vectors, self.dim)
        done = self._overwrite(item_ids, vectors) if item_ids else np.ones(0, bool)
        if done.all():
            return
        if done.any():  # new items beside held ones: only the new take labels
            item_ids, vectors = [i for i, d in zip(item_ids, done.tolist(), strict=True) if not d], vectors[~done]
        with serial(len(item_ids)):
            self._drop_labels(self._ids.forget(item_ids))
            labels = self._ids.assign(item_ids)
            _add_built(Built(self._master, self._norm, self._bands, self._bounds, self._scan), labels, vectors)
            for journal in self._journals:
                journal.record_add(labels, vectors, item_ids)
            if self._replica is not None:
                _add_built(Built(self._replica, self._norm, self._bands), labels, vectors)
        self._maybe_rebuild()

    def _overwrite(self, item_ids: list[str], vectors: np.ndarray) -> bool:
        """New vectors of items the index holds, written in place with their labels kept: in the
        exact index over the old ones (a flat removal rewrites the whole index and its id map,
        whatever the number of items); in an IVF each moved to the list it is nearest now by FAISS
        in one call (through the hashtable direct map, O(changed); the lists of rows that stay
        nearest theirs known without a search, store/ivf_bounds.py). Only with nothing else to
        tell (no replica, no copy in flight, no norm bands). Returns (n,) bool: the items done
        (those held; none when it cannot)."""
        label_of = self._ids.label_of
        labels = np.fromiter(map(label_of.get, item_ids, repeat(-1)), np.int64, len(item_ids))
        held = labels >= 0
        none = np.zeros(len(labels), bool)
        if self._replica is not None or self._journals or self._bands is not None or not held.any():
            return none
        labels, vectors = (labels, vectors) if held.all() else (labels[held], vectors[held])
        if self.mode == "ivf":
            ivf = self._master
            if not isinstance(ivf, faiss.IndexIVF) or ivf.direct_map.type != faiss.DirectMap.Hashtable:
                return none
            with serial(len(labels)):
                _move_rows(ivf, self._bounds, labels, augment(vectors, self._norm))
            return held
        if self._norm:
            return none
        id_map = self._master.id_map  # ascending: labels are handed out so; read without a copy
        id_map = faiss.rev_swig_ptr(id_map.data(), id_map.size())
        at = np.minimum(np.searchsorted(id_map, labels), len(id_map) - 1)
        if not np.array_equal(id_map[at], labels):
            return none
        flat = faiss.downcast_index(self._master.index)
        faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(-1, self.dim)[at] = vectors
        return held

    def plan_upsert(self, item_ids: list[str], vectors: np.ndarray) -> UpsertPlan | None:
        """upsert's reads for distinct ids, done ahead (reads only: callable beside searches, not
        beside changes); None where upsert's in-place IVF path does not apply (store/upsert_plan.py)."""
        ivf, bounds = self._master, self._bounds
        if (self.mode != "ivf" or bounds is None or self._replica is not None or self._journals
                or self._bands is not None or not isinstance(ivf, faiss.IndexIVF)
                or ivf.direct_map.type != faiss.DirectMap.Hashtable or len(set(item_ids)) != len(item_ids)):
            return None
        changes, label_of = self._changes, self._ids.label_of
        labels = np.fromiter(map(label_of.get, item_ids, repeat(-1)), np.int64, len(item_ids))
        padded = augment(np.asarray(vectors, np.float32), self._norm)
        held = labels >= 0
        with serial(len(labels)):
            moves = bounds.plan_move(labels[held], padded[held], ivf.reconstruct_batch(labels[held]))
            placed = bounds.plan_place(np.ascontiguousarray(padded[~held])) if not held.all() else None
        return UpsertPlan(self, changes, list(item_ids), labels, padded, moves, placed)

    def _write_plan(self, plan: UpsertPlan) -> None:
        """upsert by an exact plan: held rows moved to their lists, new ones added to theirs."""
        ivf, bounds, held = self._master, self._bounds, plan.labels >= 0
        assert bounds is not None  # plan_upsert made the plan only with bounds
        with serial(len(plan.labels)):
            if held.any():
                labels, padded = plan.labels[held], plan.padded[held]
                lists = bounds.commit_move(plan.moves)
                remove_ivf_labels(ivf, labels)  # an IVF (plan_upsert's check): no extraction, ~19 us
                _add_core(ivf, labels, padded, lists)
            if plan.placed is not None:
                new_ids = [i for i, h in zip(plan.ids, held.tolist(), strict=True) if not h]
                labels = self._ids.assign(new_ids)
                _add_core(ivf, labels, plan.padded[~held], bounds.commit_place(labels, *plan.placed))

    def remove(self, item_ids: Iterable[str]) -> None:
        self._changes += 1
        item_ids = list(item_ids)
        with serial(len(item_ids)):
            self._drop_labels(self._ids.forget(item_ids))
        self._maybe_rebuild()

    def _drop_labels(self, labels: np.ndarray) -> None:
        if not len(labels):
            return
        _remove_built(Built(self._master, self._norm, self._bands, scan=self._scan), labels)
        for journal in self._journals:
            journal.record_remove(labels)
        if self._replica is not None:
            # GPU indexes cannot remove; dead labels are filtered at merge time until a resync
            self._replica_dead += len(labels)
            if self._replica_dead > self.config.replica_resync_fraction * max(len(self), 1):
                self._replica = None

    # ---- search ---------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, exclude: set[str] | None = None) -> list[Hit]:
        return self.search_many([queries], k, [exclude])[0]

    def search_many(
        self,
        queries: Sequence[np.ndarray],
        k: int,
        excludes: Sequence[set[str] | None] | None = None,
        bound: FetchBound | None = None,
    ) -> list[list[Hit]]:
        excludes = list(excludes) if excludes is not None else [None] * len(queries)
        self._advance_rebuild()
        index = self._search_index()
        bands = self._bands if not self.use_gpu else None
        weights = [len(np.atleast_2d(q)) for q in queries]  # each user's pooled budget, in queries
        if bands is not None and self._pooled() and self.config.query_merge_cos < 1.0:
            queries = [merge_queries(np.atleast_2d(np.asarray(q, np.float32)), self.config.query_merge_cos)
                       for q in queries]
        stacked, counts = as_query_batch(queries, self.dim)
        padded = pad_queries(stacked, self._norm, index.d)
        if not len(self) or not len(stacked) or k <= 0:
            return [[] for _ in queries]
        cap = min(index.ntotal, _GPU_MAX_K) if self._replica is not None and self.use_gpu else index.ntotal
        scan = self._scan if index is self._master and self._scan_refine else None  # a replica has none

        def search(queries: np.ndarray, fetch: int, users: list[int]) -> tuple[np.ndarray, np.ndarray]:
            probes = None if bands is None else self._probes(bands, queries, [counts[u] for u in users],
                                                             [weights[u] for u in users])
            if bands is not None and scan is not None:
                scores, labels = scan.search(index, queries, fetch, self._scan_refine, probes)
            elif bands is not None:
                scores, labels = search_placed(index, bands, queries, fetch, probes)
            else:
                scores, labels = index.search(queries, fetch)
            return labels, scores
        return search_grouped(search, padded, counts, k, self._ids.id_of, excludes,
                              extra=self._replica_dead, cap=cap, bound=bound, grouped=True)

    def _pooled(self) -> bool:
        return self.config.pooled_probes and not self._nprobe

    def _probes(self, bands: NormBands, padded: np.ndarray, counts: list[int],
                weights: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The lists each query of the banded IVF scans: pooled per user over its rows budget (the
        row budget x weights[u], the user's queries before any merge; counts by default), or a fixed nprobe / the
        per-query budget split by bands (IndexConfig.pooled_probes)."""
        if self._pooled():
            return bands.pooled_probes(padded, counts, len(self), self.rows_budget(len(self)),
                                       self.config.probe_spread, weights)
        return bands.probes(padded, bands.lists_per_band(len(self), self.rows_budget(len(self)), self._nprobe))

    def _search_index(self) -> faiss.Index:
        if not (self.use_gpu or self.config.force_replica):
            return self._master
        if self._replica is None:
            self._replica = self._clone_replica()
            self._replica_dead = 0
            self._changes += 1  # a plan made without a replica would not write to it
        return self._replica

    def _clone_replica(self) -> faiss.Index:
        if self.use_gpu:
            replica = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._master)
        else:
            replica = faiss.clone_index(self._master)
        self._set_nprobe(replica)
        return replica

    @property
    def nprobe(self) -> int:
        """Lists each query probes in the IVF (0 when flat; banded, those of the per-query band
        shares: pooled probes spend the same rows per query on average, on other lists)."""
        if self._bands is not None:
            return int(self._bands.lists_per_band(len(self), self.rows_budget(len(self)), self._nprobe).sum())
        ivf = faiss.try_extract_index_ivf(self._master)
        return ivf.nprobe if ivf is not None else 0

    def set_nprobe(self, nprobe: int | None) -> None:
        """Change the lists probed per query (recall/speed trade-off) without rebuilding; None:
        the IndexConfig.scan_rows budget."""
        self._nprobe = nprobe
        for index in (self._master, self._replica):
            if index is not None:
                self._set_nprobe(index)

    def set_scan_rows(self, rows: int) -> None:
        """Change the row budget a query scans when no fixed nprobe is set (recall/speed): at
        IndexConfig.scan_rows_items items, scaled by scan_rows_exponent elsewhere."""
        if rows < 1:
            raise VectorIndexError(f"scan_rows must be positive, got {rows}")
        self._scan_rows = rows
        self.set_nprobe(self._nprobe)

    def set_scan_refine(self, factor: int) -> None:
        """Candidates per result a query takes from the PQ scan copy (IndexConfig.scan_refine);
        0: scan the IVF's own codes (recall/speed, or a comparison on one index)."""
        if factor < 0:
            raise VectorIndexError(f"scan_refine must not be negative, got {factor}")
        self._scan_refine = factor

    def _set_nprobe(self, index: faiss.Index) -> None:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = self._nprobe or self._budget_nprobe(ivf.ntotal, ivf.nlist)
        elif hasattr(index, "nprobe"):  # GPU IVF classes
            index.nprobe = self._nprobe or self._budget_nprobe(index.ntotal, index.nlist)

    def _budget_nprobe(self, ntotal: int, nlist: int) -> int:
        """Lists holding about the row budget's vectors (at least one, at most all)."""
        return max(1, min(nlist, math.ceil(self.rows_budget(ntotal) * nlist / max(ntotal, 1))))

    def rows_budget(self, items: int) -> int:
        """The row budget per query at this many items (IndexConfig.scan_rows_exponent)."""
        cfg = self.config
        scale = (max(items, 1) / cfg.scan_rows_items) ** cfg.scan_rows_exponent
        return max(1, round(self._scan_rows * scale))

    # ---- mode switching and retraining ----------------------------------------------------

    def _maybe_rebuild(self) -> None:
        self._advance_rebuild()
        if self._rebuild is not None or len(self) < self._retry_at:
            return
        n, cfg = len(self), self.config
        if self.mode == "flat" and n >= cfg.exact_threshold:
            self._start_rebuild("ivf")
        elif self.mode == "ivf" and n < cfg.exact_threshold // 2:
            self._start_rebuild("flat")  # hysteresis: do not flap around the threshold
        elif self.mode == "ivf" and n >= cfg.retrain_growth * self._trained_size:
            self._start_rebuild("ivf")

    def _start_rebuild(self, mode: str) -> None:
        # under the caller's lock only the chunks of the copy: one per later call (upsert, remove,
        # search), each bounded by IndexConfig.copy_chunk_rows and _s; the k-means and adds run aside
        logger.info("rebuilding vector index as %s over %d items", mode, len(self))
        self._rebuild = AsideRebuild(mode, self._chunked_copy(with_ids=False), len(self),
                                     self._build, _remove_built, _add_built)
        self._journals.append(self._rebuild)
        self._advance_rebuild()  # the first chunk now: a catalogue of one chunk starts at once
        if not self.config.rebuild_aside:
            while self._rebuild is not None and not self._advance_rebuild():
                pass

    def _advance_rebuild(self) -> bool:
        """One bounded step of the rebuild in flight: a chunk of its copy, its start once copied,
        or its swap once built; True when one was swapped in."""
        job = self._rebuild
        if job is None:
            return False
        if not job.started:
            assert job.copy is not None
            if not job.copy.step():
                return False
            job.started = True
            if self.config.rebuild_aside:
                self._start_aside(partial(_run_aside, job.run, self.config))
            else:
                job.run()
        return self._swap_when_built()

    def finish_rebuild(self, timeout: float | None = None) -> bool:
        """Copy the rest, wait for a rebuild in flight and swap it in (the caller holds the
        serving lock, as for upsert); True when one was swapped in."""
        swapped = False
        while self._rebuild is not None and not self._rebuild.started:
            swapped |= self._advance_rebuild()
        if self._rebuild is None:
            return swapped
        if not self._rebuild.wait(timeout):
            raise VectorIndexError(f"index rebuild still running after {timeout}s")
        return self._swap_when_built()

    def _swap_when_built(self) -> bool:
        job = self._rebuild
        if job is None or not job.ready:
            return False
        self._rebuild = None
        self._journals.remove(job)
        self._changes += 1
        try:
            built = job.finish()
        except VectorIndexError as e:  # the old index is whole and keeps serving
            self._retry_at = math.ceil(len(self) * self.config.retrain_growth)
            logger.error("%s; serving the %s index, retrying at %d items", e, self.mode, self._retry_at)
            return False
        self._set_nprobe(built.index)  # set_nprobe may have been called since the build began
        self._master, self._norm, self._bands = built.index, built.norm, built.bands
        self._bounds, self._scan = built.bounds, built.scan
        self.mode, self._trained_size = job.mode, job.trained_size
        self._replica, self._replica_dead = None, 0
        logger.info("vector index swapped to %s over %d items", job.mode, len(self))
        return True

    def _build(self, mode: str, labels: np.ndarray, vectors: np.ndarray) -> Built:
        built = Built(self._new_flat(), 0.0) if mode == "flat" else self._train_ivf(vectors)
        for start in range(0, len(labels), 262_144):  # chunks bound the temporary memory of add
            _add_built(built, labels[start : start + 262_144], vectors[start : start + 262_144])
        return built

    def _new_flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _train_ivf(self, vectors: np.ndarray) -> Built:
        """An empty trained IVF over dim + 1 coordinates, its R and bands: k-means on a bounded
        sample (of each norm band when banded)."""
        cfg = self.config
        norms = np.concatenate([np.sqrt(np.einsum("ij,ij->i", b, b)) for b in _blocks(vectors)])
        if worth_banding(norms, tuple(cfg.norm_bands)) and not self.use_gpu and cfg.nlist is None:
            plan = BandPlan(tuple(cfg.norm_bands), cfg.nlist_per_sqrt, cfg.train_iterations,
                            cfg.max_train_points_per_list, cfg.seed, cfg.ivf_codes)
            bands = NormBands.train(vectors, norms, plan)
            return Built(bands.empty_ivf(), bands.norm, bands, scan=self._train_scan(bands, vectors))
        nlist = cfg.nlist or int(round(cfg.nlist_per_sqrt * math.sqrt(len(vectors))))
        nlist = max(1, min(nlist, len(vectors) // 39))  # faiss wants >= 39 training points per list
        norm = float(norms.max(initial=0.0))
        ivf = faiss.IndexIVFFlat(
            faiss.IndexFlatL2(self.dim + 1), self.dim + 1, nlist, faiss.METRIC_INNER_PRODUCT
        )
        ivf.cp.niter = cfg.train_iterations
        ivf.cp.seed = cfg.seed
        ivf.cp.max_points_per_centroid = cfg.max_train_points_per_list
        sample = np.random.default_rng(cfg.seed).permutation(len(vectors))[
            : nlist * cfg.max_train_points_per_list
        ]
        ivf.train(augment(vectors[np.sort(sample)], norm))
        # a hashtable direct map makes remove_ids O(removed) instead of a scan of every list
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        bounds = ListBounds(ivf.quantizer.reconstruct_n(0, nlist), ivf.quantizer.search, norm)
        return Built(ivf, norm, None, bounds)  # nprobe is set at the swap, once the lists are filled

    def _train_scan(self, bands: NormBands, vectors: np.ndarray) -> PQScan | None:
        """The PQ scan copy's codebook, trained on a sample of the stored vectors (None: no copy)."""
        cfg = self.config
        if not cfg.scan_pq:
            return None
        sample = np.random.default_rng(cfg.seed).permutation(len(vectors))[:TRAIN_ROWS]
        return PQScan.train(bands.place(vectors[np.sort(sample)])[0], bands.centroids(), cfg.scan_pq, cfg.seed)

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """All (labels [n], vectors [n, dim]) currently in the master index."""
        return export_index(self._master, self.dim)

    # ---- chunked copies -------------------------------------------------------------------

    def _chunked_copy(self, with_ids: bool) -> ChunkedCopy:
        master, id_of, dim = self._master, self._ids.id_of, self.dim

        def read(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            # the master of the copy's start: one swapped out meanwhile still holds every label
            # live at the swap, and every change since is journalled (ChunkedCopy)
            live = np.fromiter((label for label in range(start, stop) if label in id_of), np.int64)
            if not len(live):
                return live, np.zeros((0, dim), np.float32)
            return live, np.ascontiguousarray(master.reconstruct_batch(live)[:, :dim])
        return ChunkedCopy(read, self._ids.next_label, dim, self.config.copy_chunk_rows,
                           id_of if with_ids else None, self.config.copy_chunk_s)

    def start_copy(self) -> ChunkedCopy:
        """A snapshot's copy, taken chunk by chunk: call its step() under the serving lock until it
        returns True (each bounded by IndexConfig.copy_chunk_rows and _s), serving in between, then
        finish_copy; changes made meanwhile are carried over."""
        copy = self._chunked_copy(with_ids=True)
        self._journals.append(copy)
        return copy

    def finish_copy(self, copy: ChunkedCopy, offsets: dict[int, int] | None = None) -> FrozenIndex:
        """The snapshot of a copy whose step() returned True (under the serving lock, as of now,
        with the items-topic offsets it reflects); FrozenIndex.write puts it on disk without it."""
        if not copy.done:
            raise VectorIndexError("finish_copy before the copy's last step")
        self._journals.remove(copy)
        offsets = dict(offsets if offsets is not None else self.offsets)
        meta = {
            "format": SNAPSHOT_FORMAT,
            "dim": self.dim,
            "mode": self.mode,
            "trained_size": self._trained_size,
            "next_label": self._ids.next_label,
            "offsets": {str(p): o for p, o in offsets.items()},
            "mips_norm": self._norm,
        }
        if self._bands is not None:
            meta["bands"] = self._bands.meta()
        if self._scan is not None:
            meta["scan_pq"] = self._scan.index.M
        return FrozenIndex(copy, self._empty_like_master(), meta, offsets, self._bands,
                           self._scan.empty() if self._scan is not None else None)

    def abandon_copy(self, copy: ChunkedCopy) -> None:
        """Stop journalling for a copy that will not be finished (a cancelled snapshot)."""
        if copy in self._journals:
            self._journals.remove(copy)

    def _empty_like_master(self) -> faiss.Index:
        """An empty index of the master's kind (an IVF keeps the trained centroids: a copy of
        nlist x dim floats)."""
        ivf = faiss.try_extract_index_ivf(self._master)
        if ivf is None:
            return self._new_flat()
        if self._bands is not None:
            return self._bands.empty_ivf()
        empty = faiss.IndexIVFFlat(faiss.clone_index(ivf.quantizer), ivf.d, ivf.nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        empty.is_trained = True
        empty.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._set_nprobe(empty)
        return empty

    # ---- snapshot / restore ---------------------------------------------------------------

    def snapshot(self, directory: str | Path, offsets: dict[int, int] | None = None) -> None:
        """Write index, id map and the items-topic offsets it reflects; replaces atomically."""
        frozen = self.freeze(offsets)
        frozen.write(directory)
        self.offsets = frozen.offsets

    def freeze(self, offsets: dict[int, int] | None = None) -> FrozenIndex:
        """What a snapshot holds, copied in one go under the caller's lock (stop the world: the
        worker steps start_copy's chunks instead); FrozenIndex.write puts it on disk."""
        copy = self.start_copy()
        while not copy.step():
            pass
        return self.finish_copy(copy, offsets)

    @classmethod
    def restore(cls, directory: str | Path, config: IndexConfig | None = None) -> FaissIndex:
        """An index equal to the snapshot at directory; its offsets are in `.offsets`."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text())
            ids, labels = _read_ids((directory / "ids.bin").read_bytes())
            master = faiss.read_index(str(directory / "index.faiss"))
        except (OSError, ValueError, KeyError, RuntimeError, StateCodecError) as exc:
            raise VectorIndexError(f"cannot restore vector index from {directory}: {exc}") from exc
        self = cls(config or IndexConfig(dim=meta["dim"]))
        norm = float(meta.get("mips_norm", 0.0))
        bands = self._read_bands(directory, meta, master)
        width = bands.width if bands is not None else self.dim + (1 if norm else 0)
        if meta["format"] not in _READS or meta["dim"] != self.dim or master.d != width or master.ntotal != len(ids):
            raise VectorIndexError(
                f"snapshot at {directory} does not match (dim {meta['dim']}, {len(ids)} ids)"
            )
        self._master, self.mode, self._trained_size = master, meta["mode"], meta["trained_size"]
        self._norm, self._bands = norm, bands
        self._scan = self._read_scan(directory, meta, master)
        self._set_nprobe(self._master)  # the config's nprobe wins over the snapshot's
        self._ids.restore(ids, labels, meta["next_label"])
        self.offsets = {int(p): int(o) for p, o in meta["offsets"].items()}
        return self

    @staticmethod
    def _read_scan(directory: Path, meta: dict, master: faiss.Index) -> PQScan | None:
        if not meta.get("scan_pq"):
            return None
        try:
            scan = PQScan(faiss.read_index(str(directory / "scan.faiss")))
        except (OSError, RuntimeError) as exc:
            raise VectorIndexError(f"cannot restore the PQ scan copy from {directory}: {exc}") from exc
        if scan.index.ntotal != master.ntotal or scan.index.nlist != faiss.extract_index_ivf(master).nlist:
            raise VectorIndexError(f"the PQ scan copy at {directory} does not match its index")
        return scan

    @staticmethod
    def _read_bands(directory: Path, meta: dict, master: faiss.Index) -> NormBands | None:
        if "bands" not in meta:
            return None
        try:
            return NormBands.from_meta(meta["bands"], faiss.extract_index_ivf(master).quantizer)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise VectorIndexError(f"snapshot at {directory} has bad norm bands: {exc}") from exc


@dataclass(frozen=True)
class FrozenIndex:
    """An index snapshot in memory, detached from the live index: the finished chunked copy
    (vectors, labels, ids), an empty index of the master's kind and the metadata."""

    copy: ChunkedCopy
    empty: faiss.Index
    meta: dict
    offsets: dict[int, int]
    bands: NormBands | None = None
    scan: PQScan | None = None  # the PQ scan copy's codebook, empty

    def index(self) -> tuple[Built, list[str], np.ndarray]:
        """(the index filled with the copy, beside it its PQ scan copy, item ids, their labels); an
        IVF assigns each vector to its list again (the same centroids: the same lists), off the
        serving lock."""
        labels, vectors, ids = self.copy.contents()
        built = Built(faiss.clone_index(self.empty), float(self.meta["mips_norm"]), self.bands,
                      scan=self.scan.empty() if self.scan is not None else None)
        if faiss.try_extract_index_ivf(built.index) is not None:
            faiss.extract_index_ivf(built.index).set_direct_map_type(faiss.DirectMap.Hashtable)
        for start in range(0, len(labels), 262_144):  # chunks bound the temporary memory of add
            _add_built(built, labels[start:start + 262_144], vectors[start:start + 262_144])
        return built, ids, labels

    def write(self, directory: str | Path) -> None:
        """Write the snapshot folder; it replaces `directory` atomically."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        built, ids, labels = self.index()
        faiss.write_index(built.index, str(tmp / "index.faiss"))
        if built.scan is not None:
            faiss.write_index(built.scan.index, str(tmp / "scan.faiss"))
        w = Writer()
        w.texts(ids)
        w.array(labels, "<i8")
        (tmp / "ids.bin").write_bytes(w.frame(_IDS_MAGIC, SNAPSHOT_FORMAT))
        (tmp / "meta.json").write_text(json.dumps(self.meta))
        replace_dir(tmp, directory)


@dataclass(frozen=True)
class Built:
    """An index as a rebuild makes it, with the R of its extra coordinate (0: none)."""

    index: faiss.Index
    norm: float
    bands: NormBands | None = None
    bounds: ListBounds | None = None  # an unbanded IVF's rows' lists, kept by _add_built
    scan: PQScan | None = None  # the bands' PQ fast-scan copy (IndexConfig.scan_pq)


def _run_aside(job: Job, config: IndexConfig) -> None:
    """A rebuild on its own thread: nicer, and faiss on config.rebuild_threads OpenMP threads
    there (the setting is the calling thread's), so serving keeps a core."""
    lower_thread_priority(config.rebuild_nice)
    faiss.omp_set_num_threads(config.rebuild_threads)
    job()


def _add_built(built: Built, labels: np.ndarray, vectors: np.ndarray) -> None:
    if built.bands is not None:
        add_placed(built.index, built.bands, labels, vectors, built.scan)
    elif built.bounds is not None:
        padded = augment(vectors, built.norm)
        _add_core(built.index, labels, padded, built.bounds.place(labels, padded))
    else:
        built.index.add_with_ids(augment(vectors, built.norm), labels)


def _move_rows(ivf: faiss.IndexIVF, bounds: ListBounds | None, labels: np.ndarray, padded: np.ndarray) -> None:
    """Held rows of an IVF take new (augmented) vectors, each in the list nearest it now: as
    update_vectors does (removed, then added), the lists found through the bounds when known."""
    if bounds is None:
        ivf.update_vectors(labels, padded)
        return
    lists = bounds.move(labels, padded, ivf.reconstruct_batch(labels))
    remove_labels(ivf, labels)
    _add_core(ivf, labels, padded, lists)


def _add_core(ivf: faiss.IndexIVF, labels: np.ndarray, padded: np.ndarray, lists: np.ndarray) -> None:
    """Add vectors to the lists given (no search of the centroids)."""
    labels = np.ascontiguousarray(labels, np.int64)
    padded, lists = np.ascontiguousarray(padded, np.float32), np.ascontiguousarray(lists, np.int64)
    ivf.add_core(len(labels), faiss.swig_ptr(padded), faiss.swig_ptr(labels), faiss.swig_ptr(lists))


def _remove_built(built: Built, labels: np.ndarray) -> None:
    if built.scan is not None and len(labels):  # the lists from the IVF's direct map, before it forgets
        built.scan.remove(labels, lists_of(faiss.extract_index_ivf(built.index), labels))
    remove_labels(built.index, labels)


def _blocks(vectors: np.ndarray, rows: int = 65_536) -> Iterable[np.ndarray]:
    return (vectors[start:start + rows] for start in range(0, len(vectors), rows))


def augment(vectors: np.ndarray, norm: float) -> np.ndarray:
    """vectors [n, d] with the extra coordinate sqrt(norm^2 - |x|^2) (0 past norm); unchanged
    when norm is 0."""
    if not norm:
        return vectors
    out = np.empty((len(vectors), vectors.shape[1] + 1), np.float32)  # filled in place: no hstack copy
    out[:, :-1] = vectors
    out[:, -1] = np.sqrt(np.maximum(norm * norm - np.einsum("ij,ij->i", vectors, vectors), 0.0))
    return out


def pad_queries(queries: np.ndarray, norm: float, width: int) -> np.ndarray:
    """Queries [q, d] with zeros up to the index's width (the extra coordinate and any SIMD
    padding), so scores are the plain inner products; unchanged when norm is 0."""
    if not norm or queries.shape[1] >= width:
        return queries
    pad = np.zeros((len(queries), width - queries.shape[1]), np.float32)
    return np.ascontiguousarray(np.hstack([queries, pad]))


def remove_ivf_labels(ivf: faiss.Index, labels: np.ndarray) -> None:
    """Remove labels from an IVF (or an index wrapping one); absent labels are ignored."""
    labels = np.ascontiguousarray(labels, np.int64)
    # the hashtable direct map removes only from an explicit array
    ivf.remove_ids(faiss.IDSelectorArray(len(labels), faiss.swig_ptr(labels)))


def remove_labels(index: faiss.Index, labels: np.ndarray) -> None:
    """Remove labels from a flat (IDMap2) or IVF index; absent labels are ignored."""
    if not len(labels):
        return
    if faiss.try_extract_index_ivf(index) is not None:
        remove_ivf_labels(index, labels)
    else:
        labels = np.ascontiguousarray(labels, np.int64)
        index.remove_ids(faiss.IDSelectorBatch(labels))


def export_index(index: faiss.Index, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels [n], vectors [n, dim]) copied out of a flat (IDMap2) or IVF-Flat index (an IVF's
    extra coordinate dropped)."""
    if faiss.try_extract_index_ivf(index) is not None:
        labels, vectors = _export_ivf(index, index.d)
        return labels, np.ascontiguousarray(vectors[:, :dim])
    index = faiss.downcast_index(index)  # clone_index returns the base class
    flat = faiss.downcast_index(index.index)
    labels = faiss.vector_to_array(index.id_map).astype(np.int64)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * dim).copy()
    return labels, vectors.reshape(-1, dim)


def _export_ivf(index: faiss.Index, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ivf = faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    flat = ivf.code_size == 4 * dim  # fp32 codes are the vectors; others are decoded
    labels, vectors = [], []
    for lst in range(ivf.nlist):
        size = invlists.list_size(lst)
        if size:
            labels.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
            if flat:
                codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * ivf.code_size).copy()
                vectors.append(codes.view(np.float32).reshape(size, dim))
    if not labels:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    ids = np.concatenate(labels).astype(np.int64)
    return ids, np.concatenate(vectors) if flat else ivf.reconstruct_batch(ids)


def _read_ids(data: bytes) -> tuple[list[str], np.ndarray]:
    _, r = open_frame(data, _IDS_MAGIC, _READS, "index id map")
    ids, labels = r.texts(), r.array("<i8", 1)
    r.finish()
    if len(ids) != len(labels):
        raise StateCodecError("index id map: ids and labels disagree")
    return ids, labels

