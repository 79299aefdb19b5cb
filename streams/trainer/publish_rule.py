"""Which of the rows touched since the last sync a sync publishes.

The rule: a row is published when it was stepped as an engaged item or as a history row since
its last publish, when it was created (admitted) or removed (a tombstone), or when it was
stepped only as a negative and its vector moved by more than `publish_threshold` of its norm at
its last publish: ||v - v_published|| > threshold * ||v_published||. A negative held back keeps
its reference (the vector workers hold) and is judged again whenever a later step touches it, so
the drift a worker misses is never more than the threshold. Threshold 0 publishes every row
changed. The references cost one vector per held-back row; after a restart they are gone, so
the first sync then publishes every row touched (at least once, as syncs are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Selection:
    """One sync's verdicts on the touched rows."""

    publish: list[str]  # rows to send (vector only)
    held_back: list[str]  # negatives under the threshold


class PublishRule:
    """The rule's state between syncs: rows that must go out, references of stepped negatives."""

    def __init__(self, threshold: float, publish_all_first: bool = False) -> None:
        self.threshold = threshold
        self.publish_all = publish_all_first  # a restart: references of before it are lost
        self.must: set[str] = set()  # stepped as a positive or a history row since their last publish
        self.reference: dict[str, np.ndarray] = {}  # negatives changed since their last publish

    def stepped(self, must: Iterable[str], negatives: Sequence[str],
                origin: Callable[[list[str]], np.ndarray]) -> None:
        """Record one step: rows that must go out, and negatives; origin(ids) gives the vectors
        of ids as they stood before the step's slice (what their last publish sent)."""
        self.must.update(must)
        new = [i for i in dict.fromkeys(negatives) if i not in self.must and i not in self.reference]
        if new:
            for item_id, v in zip(new, origin(new), strict=True):
                self.reference[item_id] = v.copy()

    def select(self, touched: Iterable[str], vector: Callable[[str], np.ndarray | None]) -> Selection:
        """The verdicts on `touched` (vector(id): the row's vector now, None once removed);
        published rows leave the rule's state."""
        publish, held = [], []
        for item_id in touched:
            ref, v = self.reference.get(item_id), vector(item_id)
            if self.publish_all or v is None or item_id in self.must or ref is None or self._moved(v, ref):
                publish.append(item_id)
                self.must.discard(item_id)
                self.reference.pop(item_id, None)
            else:
                held.append(item_id)
        self.publish_all = False
        return Selection(publish, held)

    def _moved(self, v: np.ndarray, ref: np.ndarray) -> bool:
        return float(np.linalg.norm(v - ref)) > self.threshold * float(np.linalg.norm(ref))
