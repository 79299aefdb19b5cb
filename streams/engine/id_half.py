"""The hybrid's ID term online: rows in the store's ID memory, the model's tower and gate.

A hybrid checkpoint (docs/architecture.md, "The hybrid score") carries the ID rows; they are
loaded into an `IdMemory` (the table issue 13's trainer will update through `parameters`).
Retrieval takes the union of the content index's candidates and the best ID-term candidates,
then one exact hybrid score reranks them all, so every item either side can return is scored
the way the offline evaluation scores it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from model.hybrid import Fusion
from model.id_checkpoint import load_id_half
from model.sasrec import SASRec
from store import IdMemory, IdMemoryConfig, IdRow, SeenItems
from store.memory_backend import MemoryKV
from store.seen_items import fingerprints

logger = logging.getLogger(__name__)


class IdHalf:
    """ID rows (IdMemory), the SASRec tower and the fitted gate of one hybrid checkpoint."""

    def __init__(self, memory: IdMemory, tower: SASRec, fusion: Fusion) -> None:
        self.memory, self.tower, self.fusion = memory, tower, fusion
        self._table: tuple[list[str], np.ndarray] | None = None  # (ids, g_i e_i) for retrieval
        self._pos: dict[str, int] | None = None  # id -> row of the table
        self._hashes: np.ndarray | None = None  # item_hash per row, for fingerprinted seen items

    @classmethod
    def from_checkpoint(cls, path: str | Path, memory: IdMemory | None = None) -> IdHalf | None:
        """The ID half of a hybrid checkpoint (None for a content-only one); rows go into memory."""
        ck = load_id_half(path)
        if ck is None:
            return None
        memory = memory or IdMemory(MemoryKV(), IdMemoryConfig(dim=ck.tower.opts.dim, ttl_s=0))
        ids, rows, slots = ck.present_rows()
        memory.put_rows(ids, [IdRow(r, s) for r, s in zip(rows, slots, strict=True)])
        logger.info("hybrid checkpoint %s: %d ID rows", path, len(ids))
        return cls(memory, ck.tower, ck.fusion)

    def user_vectors(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """h_u (U, k) from each user's item ids, oldest first (items without a row are skipped).
        The tower reads the memory's rows, so rows the trainer publishes move h_u too."""
        rows = [self.memory.lookup([i for i in h if i in self.memory])[0] for h in histories]
        return self.tower.user_vectors_of_rows(rows)

    def terms(self, users: np.ndarray, candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """g_i <h_u, e_i> - r_u per user and candidate (r_u: the prior, model/hybrid.py); exactly 0
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
        """r_u (U, 1) over every row of the memory; None when the checkpoint has no prior."""
        if float(self.fusion.prior_q) < 0:
            return None
        ids, gated = self.table()
        with torch.no_grad():
            return self.fusion.reference_of_terms(torch.from_numpy(np.asarray(users, np.float32) @ gated.T))

    def retrieve(self, users: np.ndarray, k: int, seen: Sequence[SeenItems | set[str]]) -> list[list[str]]:
        """The k items with the largest ID term per user (seen items excluded); exact, over all rows."""
        ids, gated = self.table()
        if not ids:
            return [[] for _ in users]
        scores = users @ gated.T  # (U, R)
        for u, skip in enumerate(seen):
            scores[u, self._rows_of(skip)] = -np.inf
        take = min(k, len(ids))
        out = []
        for s in scores:
            if take == 0:
                out.append([])
                continue
            edge = s[np.argpartition(-s, take - 1)[take - 1]]
            top = np.flatnonzero(s >= edge)  # every tie at the edge: the order of a stable full sort
            top = top[np.lexsort((top, -s[top]))][:take]
            out.append([ids[j] for j in top if s[j] > -np.inf])
        return out

    def _rows_of(self, seen: SeenItems | set[str]) -> list[int]:
        """Rows a user must not get: kept items by id; earlier ones (store/seen_items.py) by
        fingerprint, over every row, as they cannot be listed."""
        pos = self._positions()
        if not isinstance(seen, SeenItems):
            return [pos[i] for i in seen if i in pos]
        rows = [pos[i] for i in seen.kept if i in pos]
        if len(seen.earlier):
            if self._hashes is None:
                self._hashes = fingerprints(self.table()[0])
            rows += np.flatnonzero(seen.earlier.holds(self._hashes)).tolist()
        return rows

    def _positions(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {i: j for j, i in enumerate(self.table()[0])}
        return self._pos

    def table(self) -> tuple[list[str], np.ndarray]:
        """(ids, g_i e_i) over every row, rebuilt after the rows change (invalidate())."""
        if self._table is None:
            ids = sorted(self.memory.ids())
            rows, _ = self.memory.lookup(ids)
            with torch.no_grad():
                g = self.fusion.gates(torch.from_numpy(rows)).numpy()
            self._table = (ids, (rows * g[:, None]).astype(np.float32))
        return self._table

    def invalidate(self) -> None:
        """Rows changed (e.g. applied from the trainer): rebuild the retrieval table on next use."""
        self._table = self._pos = self._hashes = None
