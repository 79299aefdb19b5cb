"""FAISS-backed VectorIndex: exact IndexFlatIP when small, IVF-Flat when large, GPU when present."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from durable import replace_dir

from .binary import Writer, open_frame
from .config import FetchBound, IndexConfig
from .errors import StateCodecError, VectorIndexError
from .index_rebuild import AsideRebuild, Job, start_thread
from .vector_index import Hit, IdMap, as_query_batch, dedupe_last, search_grouped

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
_IDS_MAGIC = b"TRID"
_GPU_MAX_K = 2048  # faiss GPU top-k limit


def gpu_available() -> bool:
    """True when this faiss build sees at least one GPU."""
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


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
        self.mode = "flat"
        self._trained_size = 0
        self._replica: faiss.Index | None = None
        self._replica_dead = 0  # labels still in the replica but removed from the master
        self._gpu_res = faiss.StandardGpuResources() if self.use_gpu else None
        self.offsets: dict[int, int] = {}
        self._nprobe = self.config.nprobe
        self._start_aside = start_aside
        self._rebuild: AsideRebuild | None = None  # a rebuild in flight (the master still serves)
        self._retry_at = 0  # after a failed rebuild, the size at which to try again

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids.label_of

    @property
    def nlist(self) -> int:
        return self._master.nlist if self.mode == "ivf" else 0

    # ---- mutation -------------------------------------------------------------------------

    def upsert(self, item_ids: list[str], vectors: np.ndarray) -> None:
        item_ids, vectors = dedupe_last(item_ids, vectors, self.dim)
        if not item_ids:
            return
        self._drop_labels(self._ids.forget(item_ids))
        labels = self._ids.assign(item_ids)
        self._master.add_with_ids(vectors, labels)
        if self._rebuild is not None:
            self._rebuild.record_add(labels, vectors)
        if self._replica is not None:
            self._replica.add_with_ids(vectors, labels)
        self._maybe_rebuild()

    def remove(self, item_ids: Iterable[str]) -> None:
        self._drop_labels(self._ids.forget(list(item_ids)))
        self._maybe_rebuild()

    def _drop_labels(self, labels: np.ndarray) -> None:
        if not len(labels):
            return
        remove_labels(self._master, labels)
        if self._rebuild is not None:
            self._rebuild.record_remove(labels)
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
        stacked, counts = as_query_batch(queries, self.dim)
        self._swap_when_built()
        index = self._search_index()
        if not len(self) or not len(stacked) or k <= 0:
            return [[] for _ in queries]
        cap = min(index.ntotal, _GPU_MAX_K) if self._replica is not None and self.use_gpu else index.ntotal

        def search(queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            scores, labels = index.search(queries, fetch)
            return labels, scores
        return search_grouped(search, stacked, counts, k, self._ids.id_of, excludes,
                              extra=self._replica_dead, cap=cap, bound=bound)

    def _search_index(self) -> faiss.Index:
        if not (self.use_gpu or self.config.force_replica):
            return self._master
        if self._replica is None:
            self._replica = self._clone_replica()
            self._replica_dead = 0
        return self._replica

    def _clone_replica(self) -> faiss.Index:
        if self.use_gpu:
            replica = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._master)
        else:
            replica = faiss.clone_index(self._master)
        self._set_nprobe(replica)
        return replica

    def set_nprobe(self, nprobe: int) -> None:
        """Change the lists probed per query (recall/speed trade-off) without rebuilding."""
        self._nprobe = nprobe
        for index in (self._master, self._replica):
            if index is not None:
                self._set_nprobe(index)

    def _set_nprobe(self, index: faiss.Index) -> None:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = self._nprobe
        elif hasattr(index, "nprobe"):  # GPU IVF classes
            index.nprobe = self._nprobe

    # ---- mode switching and retraining ----------------------------------------------------

    def _maybe_rebuild(self) -> None:
        self._swap_when_built()
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
        # the copy is the one step under the caller's lock: a memcpy, not the k-means and adds
        copy = faiss.clone_index(self._master)
        logger.info("rebuilding vector index as %s over %d items", mode, copy.ntotal)
        self._rebuild = AsideRebuild(mode, copy, lambda index: export_index(index, self.dim),
                                     self._build, remove_labels)
        if self.config.rebuild_aside:
            self._start_aside(self._rebuild.run)
        else:
            self._rebuild.run()
            self._swap_when_built()

    def finish_rebuild(self, timeout: float | None = None) -> bool:
        """Wait for a rebuild in flight and swap it in (the caller holds the serving lock, as for
        upsert); True when one was swapped in."""
        if self._rebuild is None:
            return False
        if not self._rebuild.wait(timeout):
            raise VectorIndexError(f"index rebuild still running after {timeout}s")
        return self._swap_when_built()

    def _swap_when_built(self) -> bool:
        job = self._rebuild
        if job is None or not job.ready:
            return False
        self._rebuild = None
        try:
            index = job.finish()
        except VectorIndexError as e:  # the old index is whole and keeps serving
            self._retry_at = math.ceil(len(self) * self.config.retrain_growth)
            logger.error("%s; serving the %s index, retrying at %d items", e, self.mode, self._retry_at)
            return False
        self._set_nprobe(index)  # set_nprobe may have been called since the build began
        self._master, self.mode, self._trained_size = index, job.mode, job.trained_size
        self._replica, self._replica_dead = None, 0
        logger.info("vector index swapped to %s over %d items", job.mode, len(self))
        return True

    def _build(self, mode: str, labels: np.ndarray, vectors: np.ndarray) -> faiss.Index:
        index = self._new_flat() if mode == "flat" else self._train_ivf(vectors)
        for start in range(0, len(labels), 262_144):  # chunks bound the temporary memory of add
            index.add_with_ids(vectors[start : start + 262_144], labels[start : start + 262_144])
        return index

    def _new_flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _train_ivf(self, vectors: np.ndarray) -> faiss.Index:
        cfg = self.config
        nlist = cfg.nlist or int(round(math.sqrt(len(vectors))))
        nlist = max(1, min(nlist, len(vectors) // 39))  # faiss wants >= 39 training points per list
        ivf = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT
        )
        ivf.cp.niter = cfg.train_iterations
        ivf.cp.seed = cfg.seed
        ivf.cp.max_points_per_centroid = cfg.max_train_points_per_list
        sample = np.random.default_rng(cfg.seed).permutation(len(vectors))[
            : nlist * cfg.max_train_points_per_list
        ]
        ivf.train(vectors[np.sort(sample)])
        # a hashtable direct map makes remove_ids O(removed) instead of a scan of every list
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.nprobe = self._nprobe
        return ivf

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """All (labels [n], vectors [n, dim]) currently in the master index."""
        return export_index(self._master, self.dim)

    # ---- snapshot / restore ---------------------------------------------------------------

    def snapshot(self, directory: str | Path, offsets: dict[int, int] | None = None) -> None:
        """Write index, id map and the items-topic offsets it reflects; replaces atomically."""
        frozen = self.freeze(offsets)
        frozen.write(directory)
        self.offsets = frozen.offsets

    def freeze(self, offsets: dict[int, int] | None = None) -> FrozenIndex:
        """A copy of what a snapshot holds (the index, id map, metadata), taken under the
        caller's lock (a clone: one memcpy of the vectors, no serialization); FrozenIndex.write
        puts it on disk without the lock."""
        ids = list(self._ids.label_of)
        offsets = dict(offsets if offsets is not None else self.offsets)
        meta = {
            "format": SNAPSHOT_FORMAT,
            "dim": self.dim,
            "mode": self.mode,
            "trained_size": self._trained_size,
            "next_label": self._ids.next_label,
            "offsets": {str(p): o for p, o in offsets.items()},
        }
        labels = np.fromiter((self._ids.label_of[i] for i in ids), np.int64, len(ids))
        return FrozenIndex(faiss.clone_index(self._master), ids, labels, meta, offsets)

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
        if (
            meta["format"] != SNAPSHOT_FORMAT
            or meta["dim"] != self.dim
            or master.ntotal != len(ids)
        ):
            raise VectorIndexError(
                f"snapshot at {directory} does not match (dim {meta['dim']}, {len(ids)} ids)"
            )
        self._master, self.mode, self._trained_size = master, meta["mode"], meta["trained_size"]
        self._set_nprobe(self._master)  # the config's nprobe wins over the snapshot's
        self._ids.restore(ids, labels, meta["next_label"])
        self.offsets = {int(p): int(o) for p, o in meta["offsets"].items()}
        return self


@dataclass(frozen=True)
class FrozenIndex:
    """An index snapshot in memory, detached from the live index: a clone and the id map."""

    index: faiss.Index
    ids: list[str]
    labels: np.ndarray  # int64, one per id
    meta: dict
    offsets: dict[int, int]

    def write(self, directory: str | Path) -> None:
        """Write the snapshot folder; it replaces `directory` atomically."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        faiss.write_index(self.index, str(tmp / "index.faiss"))
        w = Writer()
        w.texts(self.ids)
        w.array(self.labels, "<i8")
        (tmp / "ids.bin").write_bytes(w.frame(_IDS_MAGIC, SNAPSHOT_FORMAT))
        (tmp / "meta.json").write_text(json.dumps(self.meta))
        replace_dir(tmp, directory)


def remove_labels(index: faiss.Index, labels: np.ndarray) -> None:
    """Remove labels from a flat (IDMap2) or IVF index; absent labels are ignored."""
    if not len(labels):
        return
    labels = np.ascontiguousarray(labels, np.int64)
    if faiss.try_extract_index_ivf(index) is not None:
        # the hashtable direct map removes only from an explicit array
        index.remove_ids(faiss.IDSelectorArray(len(labels), faiss.swig_ptr(labels)))
    else:
        index.remove_ids(faiss.IDSelectorBatch(labels))


def export_index(index: faiss.Index, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels [n], vectors [n, dim]) copied out of a flat (IDMap2) or IVF-Flat index."""
    if faiss.try_extract_index_ivf(index) is not None:
        return _export_ivf(index, dim)
    index = faiss.downcast_index(index)  # clone_index returns the base class
    flat = faiss.downcast_index(index.index)
    labels = faiss.vector_to_array(index.id_map).astype(np.int64)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * dim).copy()
    return labels, vectors.reshape(-1, dim)


def _export_ivf(index: faiss.Index, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ivf = faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    labels, vectors = [], []
    for lst in range(ivf.nlist):
        size = invlists.list_size(lst)
        if size:
            labels.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * ivf.code_size).copy()
            vectors.append(codes.view(np.float32).reshape(size, dim))
    if not labels:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate(labels).astype(np.int64), np.concatenate(vectors)


def _read_ids(data: bytes) -> tuple[list[str], np.ndarray]:
    _, r = open_frame(data, _IDS_MAGIC, {SNAPSHOT_FORMAT}, "index id map")
    ids, labels = r.texts(), r.array("<i8", 1)
    r.finish()
    if len(ids) != len(labels):
        raise StateCodecError("index id map: ids and labels disagree")
    return ids, labels

