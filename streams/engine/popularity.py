"""Non-personalised fallback: item popularity over the most recent engagements."""

from __future__ import annotations

import logging
from collections import Counter, deque

logger = logging.getLogger(__name__)


class RecentPopularity:
    """Engagement counts over a sliding window of the last `window` engagements (worker-local)."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._recent: deque[str] = deque()
        self._counts: Counter[str] = Counter()

    def observe(self, item_id: str) -> None:
        self._recent.append(item_id)
        self._counts[item_id] += 1
        if len(self._recent) > self.window:
            old = self._recent.popleft()
            if self._counts.get(old, 0) > 1:
                self._counts[old] -= 1
            else:  # last entry, or an item forgotten meanwhile
                self._counts.pop(old, None)

    def forget(self, item_id: str) -> None:
        """A removed item is never recommended again (its window entries just stop counting)."""
        self._counts.pop(item_id, None)

    def top(self, k: int, exclude: set[str]) -> list[tuple[str, float]]:
        """Up to k (item_id, share of the window) pairs, most engaged first, ties by id."""
        ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
        total = max(len(self._recent), 1)
        return [(i, c / total) for i, c in ranked if i not in exclude][:k]
