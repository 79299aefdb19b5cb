"""The vector index interface, string-id mapping and result merging shared by every backend."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .config import FetchBound
from .errors import VectorIndexError

if TYPE_CHECKING:
    from .typed_stores import ItemStore

logger = logging.getLogger(__name__)

Hit = tuple[str, float]


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product top-k over items keyed by string id; many query vectors per user."""

    dim: int

    def upsert(self, item_ids: list[str], vectors: np.ndarray) -> None:
        """Insert or replace items (vectors [n, dim]); the last duplicate in a batch wins."""
        ...

    def remove(self, item_ids: Iterable[str]) -> None:
        """Remove items; unknown ids are ignored."""
        ...

    def search(self, queries: np.ndarray, k: int, exclude: set[str] | None = None) -> list[Hit]:
        """Top-k items over all query rows [q, dim]: max score per item, excluded ids dropped."""
        ...

    def search_many(
        self,
        queries: Sequence[np.ndarray],
        k: int,
        excludes: Sequence[set[str] | None] | None = None,
        bound: FetchBound | None = None,
    ) -> list[list[Hit]]:
        """search() for many users in one batched call; bound: fetch sizes (None: exact)."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, item_id: object) -> bool: ...


class IdMap:
    """String item ids <-> int64 labels. Every upsert takes a fresh label, never reused,
    so a stale replica can only return labels that are live (current vector) or dead (dropped)."""

    def __init__(self) -> None:
        self.label_of: dict[str, int] = {}
        self.id_of: dict[int, str] = {}
        self.next_label = 0

    def __len__(self) -> int:
        return len(self.label_of)

    def assign(self, item_ids: list[str]) -> np.ndarray:
        """Fresh labels for item_ids (callers drop the old labels first)."""
        labels = np.arange(self.next_label, self.next_label + len(item_ids), dtype=np.int64)
        self.next_label += len(item_ids)
        for item_id, label in zip(item_ids, labels.tolist(), strict=True):
            self.label_of[item_id] = label
            self.id_of[label] = item_id
        return labels

    def forget(self, item_ids: Iterable[str]) -> np.ndarray:
        """Drop item_ids; return the labels they had."""
        labels = [self.label_of.pop(i) for i in item_ids if i in self.label_of]
        for label in labels:
            del self.id_of[label]
        return np.array(labels, dtype=np.int64)

    def restore(self, item_ids: list[str], labels: np.ndarray, next_label: int) -> None:
        self.label_of = dict(zip(item_ids, labels.tolist(), strict=True))
        self.id_of = {label: i for i, label in self.label_of.items()}
        self.next_label = next_label


def dedupe_last(item_ids: list[str], vectors: np.ndarray, dim: int) -> tuple[list[str], np.ndarray]:
    """Validate shapes, cast to float32 and keep the last row of each repeated id."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape != (len(item_ids), dim):
        raise VectorIndexError(
            f"expected vectors of shape ({len(item_ids)}, {dim}), got {vectors.shape}"
        )
    last = {item_id: row for row, item_id in enumerate(item_ids)}
    if len(last) == len(item_ids):
        return list(item_ids), vectors
    rows = sorted(last.values())
    return [item_ids[r] for r in rows], vectors[rows]


def as_query_batch(queries: Sequence[np.ndarray], dim: int) -> tuple[np.ndarray, list[int]]:
    """Stack per-user query arrays into one [Q, dim] float32 matrix; return it and the row counts."""
    blocks = [np.atleast_2d(np.asarray(q, dtype=np.float32)) for q in queries]
    for b in blocks:
        if b.ndim != 2 or b.shape[1] != dim:
            raise VectorIndexError(f"queries must have shape [q, {dim}], got {b.shape}")
    counts = [len(b) for b in blocks]
    stacked = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
    return np.ascontiguousarray(stacked), counts


def fetch_size(k: int, exclude: set[str] | None, extra: int = 0,
               bound: FetchBound | None = None) -> int:
    """Neighbours one user's queries fetch so that k survive its exclusions (at most k x
    bound.factor with a bound), rounded up to a power of two so that users of similar need
    share one search."""
    need = k + (len(exclude) if exclude else 0) + extra
    if bound is not None:
        need = min(need, k * bound.factor + extra)
    return _pow2(need)


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def search_grouped(
    search: Callable[..., tuple[np.ndarray, np.ndarray]],
    stacked: np.ndarray,
    counts: list[int],
    k: int,
    id_of: Mapping[int, str],
    excludes: Sequence[set[str] | None],
    extra: int = 0,
    cap: int | None = None,
    bound: FetchBound | None = None,
    grouped: bool = False,
) -> list[list[Hit]]:
    """search(queries, fetch) -> (labels, scores) once per fetch size: a user with a long seen list
    no longer makes every query of the batch fetch (and merge) that many neighbours. With a
    bound, fetch sizes stay bounded: a user short of k after the first pass gets one second
    pass of at most bound.limit (FetchBound). grouped: search also gets the positions of the
    users whose rows it is given (search(queries, fetch, users))."""
    def capped(fetch: int) -> int:
        return fetch if cap is None else min(fetch, cap)

    def per_group(queries: np.ndarray, fetch: int, users: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return search(queries, fetch, users) if grouped else search(queries, fetch)

    first = {u: capped(fetch_size(k, e, extra, bound)) for u, e in enumerate(excludes)}
    out = _search_pass(per_group, stacked, counts, k, id_of, excludes, first)
    if bound is None:
        return out
    again = {}
    for u, e in enumerate(excludes):
        fetch = capped(_pow2(min(k + (len(e) if e else 0) + extra, bound.limit)))
        if len(out[u]) < k and fetch > first[u]:
            again[u] = fetch
    for u, hits in enumerate(_search_pass(per_group, stacked, counts, k, id_of, excludes, again)):
        if u in again:
            out[u] = hits
    return out


def _search_pass(
    search: Callable[[np.ndarray, int, list[int]], tuple[np.ndarray, np.ndarray]],
    stacked: np.ndarray,
    counts: list[int],
    k: int,
    id_of: Mapping[int, str],
    excludes: Sequence[set[str] | None],
    fetch_of: Mapping[int, int],
) -> list[list[Hit]]:
    """Hits of the users in fetch_of (user -> fetch size), one search per size; [] for the rest."""
    starts = np.cumsum([0, *counts])
    groups: dict[int, list[int]] = {}
    for u, fetch in fetch_of.items():
        groups.setdefault(fetch, []).append(u)
    out: list[list[Hit]] = [[] for _ in counts]
    for fetch, users in groups.items():
        rows = np.concatenate([np.arange(starts[u], starts[u + 1]) for u in users])
        labels, scores = search(np.ascontiguousarray(stacked[rows]), fetch, users)
        merged = split_and_merge(labels, scores, [counts[u] for u in users], k, id_of,
                                 [excludes[u] for u in users])
        for u, hits in zip(users, merged, strict=True):
            out[u] = hits
    return out


def merge_hits(
    labels: np.ndarray,
    scores: np.ndarray,
    k: int,
    id_of: Mapping[int, str],
    exclude: set[str] | None,
) -> list[Hit]:
    """Merge one user's [q, k'] results: max score per item, unknown labels and exclusions dropped."""
    labels, scores = labels.ravel(), scores.ravel()
    keep = labels >= 0  # faiss pads short result lists with -1
    labels, scores = labels[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    _, first = np.unique(labels, return_index=True)  # first occurrence = that item's best score
    first.sort()
    hits: list[Hit] = []
    for i in first.tolist():
        item_id = id_of.get(int(labels[i]))
        if item_id is None or (exclude and item_id in exclude):
            continue
        hits.append((item_id, float(scores[i])))
        if len(hits) == k:
            break
    return hits


def split_and_merge(
    labels: np.ndarray,
    scores: np.ndarray,
    counts: list[int],
    k: int,
    id_of: Mapping[int, str],
    excludes: Sequence[set[str] | None],
) -> list[list[Hit]]:
    """Cut a batched [Q, k'] result back into users and merge each."""
    out, start = [], 0
    for count, exclude in zip(counts, excludes, strict=True):
        out.append(
            merge_hits(
                labels[start : start + count], scores[start : start + count], k, id_of, exclude
            )
        )
        start += count
    return out


def rebuild_from_store(
    index: VectorIndex, items: ItemStore, batch_size: int = 65_536
) -> dict[int, int]:
    """Load every item vector from the ItemStore into an empty index; return the store's offsets."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    for record in items.iterate():
        if record.vector.shape == (index.dim,):
            ids.append(record.item_id)
            rows.append(record.vector)
    if ids:
        index.upsert(ids, np.stack(rows))
    logger.info("rebuilt index with %d items from the item store", len(ids))
    return items.offsets()
