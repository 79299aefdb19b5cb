"""The hybrid's ID term online: rows in the store's ID memory, the model's tower and gate.

A hybrid checkpoint (docs/architecture.md, "The hybrid score") carries the ID rows; they are
loaded into an `IdMemory` (the table issue 13's trainer will update through `parameters`).
Retrieval takes the union of the content index's candidates and the best ID-term candidates,
then one exact hybrid score reranks them all, so every item either side can return is scored
the way the offline evaluation scores it. Neither side scores every row per batch: ID candidates
come from an index over the gated rows, the prior's reference from a sample of rows, and both
follow the rows the trainer changes without a rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.ids.hybrid import Fusion
from model.ids.id_checkpoint import load_id_half
from model.ids.sasrec import SASRec
from store import FetchBound, IdMemory, IdMemoryConfig, IdRow, IndexConfig, RowSample, SeenItems
from store.faiss_index import FaissIndex
from store.memory_backend import MemoryKV
from store.row_sample import PutPlan
from store.upsert_plan import UpsertPlan
from streams.engine.config import IdIndexConfig

logger = logging.getLogger(__name__)

_SLICE = 65_536  # rows read per step of a full index build


@dataclass
class PreparedRows:
    """Changed rows worked out before they are applied (IdHalf.prepare_rows): gated, and the
    index's plan for them (None: none applies; the upsert then does the whole work)."""

    ids: list[str]
    gated: np.ndarray  # (n, k) g_i e_i
    plan: UpsertPlan | None
    sample_plan: PutPlan | None = None  # the row sample's reads, for known rows as prepare_rows was told

    def take(self, at: np.ndarray) -> PreparedRows:
        """The rows at (positions, ascending) alone (the row sample's plan dropped)."""
        return PreparedRows([self.ids[k] for k in at.tolist()], self.gated[at],
                            None if self.plan is None else self.plan.take(at))


class IdHalf:
    """ID rows (IdMemory), the SASRec tower and the fitted gate of one hybrid checkpoint.

    Candidates come from an inner-product index over the gated rows g_i e_i (exact below
    IdIndexConfig.exact_threshold rows, IVF above) and r_u from a uniform sample of rows; both
    are built from the memory on first use and then follow changed rows (`rows_changed`)."""

    def __init__(self, memory: IdMemory, tower: SASRec, fusion: Fusion,
                 config: IdIndexConfig | None = None) -> None:
        self.memory, self.tower, self.fusion = memory, tower, fusion
        self.config = config or IdIndexConfig()
        self._index: FaissIndex | None = None  # g_i e_i of every row; None until first use
        self._sample = RowSample(self.config.reference_sample, memory.config.dim, self.config.seed)
        self._sampled = False  # the sample is drawn from the memory on first use

    @classmethod
    def from_checkpoint(cls, path: str | Path, memory: IdMemory | None = None,
                        config: IdIndexConfig | None = None) -> IdHalf | None:
        """The ID half of a hybrid checkpoint (None for a content-only one); rows go into memory."""
        ck = load_id_half(path)
        if ck is None:
            return None
        memory = memory or IdMemory(MemoryKV(), IdMemoryConfig(dim=ck.tower.opts.dim, ttl_s=0))
        ids, rows, slots = ck.present_rows()
        memory.put_rows(ids, [IdRow(r, s) for r, s in zip(rows, slots, strict=True)])
        logger.info("hybrid checkpoint %s: %d ID rows", path, len(ids))
        return cls(memory, ck.tower, ck.fusion, config)

    def user_vectors(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """h_u (U, k) from each user's item ids, oldest first (items without a row are skipped).
        The tower reads the memory's rows, so rows the trainer publishes move h_u too."""
        rows = [self.memory.lookup([i for i in h if i in self.memory])[0] for h in histories]
        return self.tower.user_vectors_of_rows(rows)

    def terms(self, users: np.ndarray, candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """g_i <h_u, e_i> - r_u per user and candidate (r_u: the prior, model/ids/hybrid.py); exactly 0
        for a candidate without a row. Each distinct candidate's row is read once per call."""
        ids = list(dict.fromkeys(i for c in candidates for i in c))
        if not ids:
            return [np.zeros(0, np.float32) for _ in candidates]
        pos = {i: k for k, i in enumerate(ids)}
        rows, present = self.memory.lookup(ids)
        with torch.no_grad():
            every = self.fusion.id_term(torch.from_numpy(np.asarray(users, np.float32)), torch.from_numpy(rows),
                                        torch.from_numpy(present), self.references(users)).numpy()
        return [every[u, [pos[i] for i in c]] for u, c in enumerate(candidates)]

    def references(self, users: np.ndarray) -> torch.Tensor | None:
        """r_u (U, 1): the prior's quantile of each user's ID terms over the row sample (every
        row up to IdIndexConfig.reference_sample rows); None when the checkpoint has no prior."""
        if float(self.fusion.prior_q) < 0:
            return None
        _, gated = self.sample().matrix()
        with torch.no_grad():
            return self.fusion.reference_of_terms(torch.from_numpy(np.asarray(users, np.float32) @ gated.T))

    def retrieve(self, users: np.ndarray, k: int, seen: Sequence[SeenItems | set[str]],
                 bound: FetchBound | None = None) -> list[list[str]]:
        """The k items with the largest ID term per user through the index, seen items filtered
        from an over-fetch (bound: its size, None: enough for every seen item)."""
        queries = [np.asarray(u, np.float32)[None] for u in users]
        hits = self.index().search_many(queries, k, list(seen), bound=bound)
        return [[i for i, _ in h] for h in hits]

    def index(self) -> FaissIndex:
        """The index of g_i e_i over every row (built from the memory on first use)."""
        if self._index is None:
            cfg = self.config
            index = FaissIndex(IndexConfig(dim=self.memory.config.dim, exact_threshold=cfg.exact_threshold,
                                           nprobe=cfg.nprobe, use_gpu=False, seed=cfg.seed,
                                           norm_bands=()))  # measured on content vectors only
            ids = sorted(self.memory.ids())
            # rows read in slices (bounded temporaries), added at once (one IVF training at most)
            parts = [self.gated(ids[s:s + _SLICE])[0] for s in range(0, len(ids), _SLICE)]
            if ids:
                index.upsert(ids, np.concatenate(parts))
                index.finish_rebuild()  # the first build is start-up work: serve from the IVF, as open_index does
            self._index = index
        return self._index

    def sample(self) -> RowSample:
        """The rows r_u is computed over (store/row_sample.py), rebuilt when removals left it short."""
        if not self._sampled or self._sample.needs_rebuild(len(self.memory)):
            chosen = self._sample.rebuild(self.memory.ids())
            self._sample.put(chosen, self.gated(chosen)[0])
            self._sampled = True
        return self._sample

    def gated(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(g_i e_i (n, k) float32, present (n,)) of ids; rows of absent ids are zero."""
        rows, present = self.memory.lookup(ids)
        with torch.no_grad():
            g = self.fusion.gates(torch.from_numpy(rows)).numpy()
        return (rows * g[:, None]).astype(np.float32), present

    def rows_changed(self, ids: Sequence[str],
                     vectors: np.ndarray | Sequence[np.ndarray | None] | None = None,
                     known: Sequence[bool] | None = None) -> None:
        """Rows put or deleted (e.g. applied from the trainer): their index vectors and sample
        entries follow, nothing else is rebuilt. vectors: the rows as stored, an (n, dim) array of
        distinct ids' rows or one per id (None: deleted), so nothing is read back; without them
        the memory is read. known[k]: id k had a row before this change (and this half was told
        of every change since), which spares the row sample a hash (RowSample.put)."""
        if vectors is None:
            ids = list(dict.fromkeys(ids))
            rows, present = self.memory.lookup(ids)
        elif isinstance(vectors, np.ndarray):
            rows, present = np.asarray(vectors, np.float32), np.ones(len(ids), bool)
        else:
            present = np.array([v is not None for v in vectors], bool)
            rows = np.zeros((len(ids), self.memory.config.dim), np.float32)
            if present.any():
                rows[present] = np.stack([v for v in vectors if v is not None])
        if not len(ids):
            return
        with torch.no_grad():
            gated = rows * self.fusion.gates(torch.from_numpy(rows)).numpy()[:, None]
        everyone = bool(present.all())
        live = list(ids) if everyone else [i for i, p in zip(ids, present, strict=True) if p]
        gone = [] if everyone else [i for i, p in zip(ids, present, strict=True) if not p]
        if self._index is not None:
            if gone:
                self._index.remove(gone)
            if live:
                self._index.upsert(live, gated if everyone else gated[present])
        if self._sampled:
            self._sample.drop(gone)
            if live:
                kept = None if known is None else [w for w, p in zip(known, present, strict=True) if p]
                self._sample.put(live, gated if everyone else gated[present], kept)

    def prepare_rows(self, ids: list[str], rows: np.ndarray, known: np.ndarray | None = None) -> PreparedRows:
        """The work of rows_changed for distinct ids' new rows that only reads (gates, the index's
        and the row sample's plans), so a caller can do it off the engine lock, beside searches but
        not beside changes. known: as rows_prepared will be told (the sample's plan holds for it)."""
        with torch.no_grad():
            gated = rows * self.fusion.gates(torch.from_numpy(rows)).numpy()[:, None]
        index, ids = self._index, list(ids)
        sample_plan = self._sample.plan_put(ids, known) if self._sampled and known is not None else None
        return PreparedRows(ids, gated, None if index is None else index.plan_upsert(ids, gated), sample_plan)

    def rows_prepared(self, rows: PreparedRows, known: Sequence[bool] | None = None) -> None:
        """rows_changed for rows prepare_rows worked out (every one present)."""
        if not rows.ids:
            return
        if self._index is not None:
            self._index.upsert(rows.ids, rows.gated, plan=rows.plan)
        if self._sampled:
            self._sample.put(rows.ids, rows.gated, known, plan=rows.sample_plan)
