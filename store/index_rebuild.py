"""A vector index rebuilt aside: trained and filled from a copy on a background thread while the
old index keeps serving; what changed meanwhile is journalled and replayed before the swap.
The copy itself is taken in bounded chunks under the owner's lock (store/index_copy.py).
(faiss itself stays in faiss_index.py: build and removal come in as functions.)"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import VectorIndexError
from .index_copy import ChunkedCopy

logger = logging.getLogger(__name__)

Job = Callable[[], None]
Index = Any  # a faiss index: add_with_ids(vectors, labels), ntotal
Build = Callable[[str, np.ndarray, np.ndarray], Index]  # (mode, labels, vectors) -> a new index
Remove = Callable[[Index, np.ndarray], None]  # remove labels from an index
Add = Callable[[Index, np.ndarray, np.ndarray], None]  # add (labels, vectors) to an index


def start_thread(job: Job) -> None:
    """Run a rebuild on its own daemon thread (a 20 s k-means must not hold up an exit)."""
    threading.Thread(target=job, name="index-rebuild", daemon=True).start()


class AsideRebuild:
    """One rebuild in flight. The owner steps the chunked copy under its lock and journals every
    add/remove it makes to the serving index from the copy's start; once copied, `run` (any
    thread) builds and replays the journal so far, `finish` (the owner's thread) replays the
    rest, so only chunks and that short tail run under the serving lock."""

    def __init__(self, mode: str, copy: ChunkedCopy, size: int, build: Build, remove: Remove,
                 add: Add) -> None:
        self.mode = mode
        self.trained_size = size  # the catalogue size this rebuild was decided at
        self.copy: ChunkedCopy | None = copy
        self._build, self._remove, self._add = build, remove, add
        # labels are never reused, so replaying the journal in order onto the copied labels
        # gives the serving index's contents (ChunkedCopy)
        self._journal = copy.journal
        self._replayed = 0
        self.started = False  # the owner set it when the copy was complete and run() began
        self._index: Index | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()

    @property
    def ready(self) -> bool:
        """The background part has ended (built or failed)."""
        return self._done.is_set()

    def record_add(self, labels: np.ndarray, vectors: np.ndarray, ids: list[str]) -> None:
        """Journal an add to the serving index (the vectors are copied: callers reuse buffers)."""
        self._journal.append((labels.copy(), np.array(vectors, np.float32, copy=True), None))

    def record_remove(self, labels: np.ndarray) -> None:
        """Journal a removal from the serving index."""
        if len(labels):
            self._journal.append((labels.copy(), None, None))

    def run(self) -> None:
        """Build the new index from the finished copy and replay the journal so far (background)."""
        try:
            if self.copy is None or not self.copy.done:
                raise VectorIndexError("index rebuild started before its copy was complete")
            labels, vectors = self.copy.copied()
            self.copy = None  # the chunks are in the arrays: free them before the k-means
            index = self._build(self.mode, labels, vectors)
            del labels, vectors  # in the new index now
            self._catch_up(index)
            self._index = index
        except BaseException as exc:  # noqa: BLE001 - reported by finish() on the owner's thread
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background part has ended; False on timeout."""
        return self._done.wait(timeout)

    def finish(self) -> Index:
        """Replay what was journalled since the build, return the new index (once `ready`)."""
        if not self.ready:
            raise VectorIndexError("index rebuild is still running")
        if self._error is not None:
            raise VectorIndexError(f"index rebuild failed: {self._error!r}") from self._error
        assert self._index is not None
        self._catch_up(self._index)
        return self._index

    def _catch_up(self, index: Index) -> None:
        # list.append is atomic and entries never change once appended, so the background
        # thread can read a prefix while the owner appends behind it
        while self._replayed < len(self._journal):
            end = len(self._journal)
            for labels, vectors, _ in self._journal[self._replayed:end]:
                if vectors is None:
                    self._remove(index, labels)
                else:
                    self._add(index, labels, vectors)
            self._replayed = end
