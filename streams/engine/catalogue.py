"""The item side of the Engine (a mixin): encode items, store encoded ones, remove them.

Encoding and storing are separate doors: the items encoder encodes the items of its own
partitions (encode_items) and publishes them; every worker's replica stores the published
vectors without encoding (put_encoded). upsert_items does both, for offline use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from model.text import item_text
from store import EncoderFingerprint, ItemRecord, ItemVector

if TYPE_CHECKING:
    from store.faiss_index import FrozenIndex
    from store.index_copy import ChunkedCopy

logger = logging.getLogger(__name__)

AHEAD_WRITE = 32  # records per store write of write_ahead (~1.3 ms of held GIL each)


class ItemCatalogue:
    """Needs the Engine's model, items, index, stats and _popularity."""

    @property
    def fingerprint(self) -> EncoderFingerprint:
        """The item encoder's identity and shape (stamped on every vector it publishes)."""
        return EncoderFingerprint(self.model.identity, self.model.dim, self.model.config.n)

    def encode_items(self, items: Sequence[Mapping[str, Any]]) -> list[ItemVector]:
        """Encode parsed items (one batched call) into item vectors; nothing is stored."""
        return self._encode([str(it["item_id"]) for it in items], [item_text(it) for it in items],
                            [str(it.get("category") or "") for it in items],
                            [float(it.get("ts") or 0.0) for it in items])

    def reencode(self, records: Sequence[ItemRecord]) -> list[ItemVector]:
        """The same items' text through this engine's encoder (vectors made by another model)."""
        return self._encode([r.item_id for r in records], [r.text for r in records],
                            [r.category for r in records], [r.ts for r in records])

    def _encode(self, ids: list[str], texts: list[str], categories: list[str],
                ts: list[float]) -> list[ItemVector]:
        if not ids:
            return []
        with self.stats.timed("model"):
            enc = self.model.encode_items(texts)
        self.stats.items_encoded += len(ids)
        fp = self.fingerprint
        return [ItemVector(ItemRecord(ids[k], texts[k], categories[k], enc.cpe[k].astype(np.float16),
                                      enc.retrieval[k], ts[k]), fp) for k in range(len(ids))]

    def put_encoded(self, vectors: Sequence[ItemVector], offsets: dict[int, int] | None = None,
                    stored: bool = False) -> int:
        """Store encoded items and upsert their retrieval vectors without encoding them (the
        offsets are recorded with them, in one write). A vector from another encoder is re-encoded from
        its text: mixing two models' vector spaces would rank nonsense, silently. stored: the
        records were written ahead (write_ahead): the index upsert, then the offsets."""
        if not vectors:
            return 0
        if stored:
            records = [v.item for v in vectors]
        else:
            records = self._own_space(vectors)
            # bytes as they came, but for the records re-encoded here
            encoded = [v.record if r is v.item else None for v, r in zip(vectors, records, strict=True)]
            with self.stats.timed("store"):
                self.items.put_many(records, offsets, encoded)
        with self.stats.timed("index"):
            self.index.upsert([r.item_id for r in records], np.stack([r.vector for r in records]))
        if stored and offsets:  # past the records only once the index holds them
            self.items.commit_offsets(offsets)
        self.stats.items_upserted += len(records)
        return len(records)

    def write_ahead(self, vectors: Sequence[ItemVector]) -> list[bytes | None] | None:
        """Store vectors of this engine's encoder before their index upsert, without offsets (off
        the serving lock), in short writes: the bytes each replaced (None: new), for undo_ahead;
        None, writing nothing, when one needs re-encoding (put_encoded then does it all)."""
        fp = self.fingerprint
        if not vectors or any(v.encoder != fp for v in vectors):
            return None
        before = [self.items.raw(v.item.item_id) for v in vectors]
        # rocksdict holds the GIL through a write (~40 us per 5 kB record): short writes let
        # the engine's thread in between
        written = 0
        try:
            for written in range(0, len(vectors), AHEAD_WRITE):
                chunk = vectors[written:written + AHEAD_WRITE]
                self.items.put_many([v.item for v in chunk], None, [v.record for v in chunk])
        except BaseException:  # what was written goes back: the apply under the lock starts clean
            for v, raw in zip(vectors[:written + AHEAD_WRITE], before, strict=False):
                self.items.put_raw(v.item.item_id, raw)
            raise
        return before

    def undo_ahead(self, item_id: str, before: bytes | None) -> None:
        """Put back what write_ahead replaced (its apply failed: the record is dead-lettered)."""
        self.items.put_raw(item_id, before)

    def _own_space(self, vectors: Sequence[ItemVector]) -> list[ItemRecord]:
        """The records, those made by another encoder re-encoded here (in one batch)."""
        fp = self.fingerprint
        foreign = [k for k, v in enumerate(vectors) if v.encoder != fp]
        records = [v.item for v in vectors]
        if foreign:
            logger.warning("%d item vectors from encoder %s, this worker runs %s: re-encoding them "
                           "(re-publish the items after a checkpoint change)", len(foreign),
                           vectors[foreign[0]].encoder.short(), fp.short())
            again = self.reencode([records[k] for k in foreign])
            for k, vec in zip(foreign, again, strict=True):
                records[k] = vec.item
            self.stats.vectors_reencoded += len(foreign)
        return records

    def upsert_items(self, items: Sequence[Mapping[str, Any]],
                     offsets: dict[int, int] | None = None) -> int:
        """Encode items (one batched call), store them and upsert their retrieval vectors."""
        return self.put_encoded(self.encode_items(items), offsets)

    def put_texts(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Store items by their text alone (zero vectors, not indexed): enough to build user
        states in bulk (sessions read item texts), never to retrieve them."""
        cpe = np.zeros((self.model.config.n, self.model.dim), np.float16)
        for it in items:
            self.items.put(ItemRecord(str(it["item_id"]), item_text(it), str(it.get("category") or ""),
                                      cpe, np.zeros(self.model.dim, np.float32), float(it.get("ts") or 0.0)))

    def has_item(self, item_id: str) -> bool:
        """True when the item is in the catalogue (stored, with its vectors or text)."""
        return item_id in self.items

    def commit_item_offsets(self, offsets: dict[int, int]) -> None:
        """Record that the items topic was applied up to `offsets` (records with nothing to store)."""
        self.items.commit_offsets(offsets)

    def start_index_copy(self, unless_current: bool = False) -> ChunkedCopy | None:
        """A chunked copy of the vector index for a snapshot (step it with index_copy_step under
        the serving lock); None when unless_current and the last one written is current."""
        if unless_current and self.items.offsets() == self.index.offsets:
            return None
        return self.index.start_copy()

    def index_copy_step(self, copy: ChunkedCopy) -> FrozenIndex | None:
        """One bounded chunk of the copy; the finished snapshot, with the item offsets it
        reflects, once the last chunk is in (None before)."""
        return self.index.finish_copy(copy, self.items.offsets()) if copy.step() else None

    def abandon_index_copy(self, copy: ChunkedCopy) -> None:
        """A copy that will not be finished (cancelled): the index stops journalling for it."""
        self.index.abandon_copy(copy)

    def finish_index_rebuild(self, timeout: float | None = None) -> bool:
        """Wait for an index rebuild in flight and swap it in (start-up work, before serving);
        False when it did not finish within timeout."""
        return self.index.finish_rebuild(timeout)

    def index_written(self, offsets: dict[int, int]) -> None:
        """The frozen index of these offsets is on disk: the next start_index_copy compares with them."""
        self.index.offsets = offsets

    def remove_items(self, item_ids: Iterable[str], offsets: dict[int, int] | None = None) -> None:
        """Tombstones: drop items from the store, the index and the fallback."""
        ids = list(item_ids)
        with self.stats.timed("store"):
            for item_id in ids:
                self.items.delete(item_id)
            if offsets:
                self.items.commit_offsets(offsets)
        with self.stats.timed("index"):
            self.index.remove(ids)
        for item_id in ids:
            self._popularity.forget(item_id)
        self.stats.items_removed += len(ids)
