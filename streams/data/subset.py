"""Subsets of an interaction log: a seeded sample of users taken while streaming, and the
k-core filter the paper-like setups use."""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")


class UserSample:
    """At most k users of a stream, the same ones whatever the row order: the k whose seeded
    hash is smallest (a bottom-k sketch), so memory holds only the kept users' rows."""

    def __init__(self, k: int | None, seed: int) -> None:
        if k is not None and k < 1:
            raise ValueError(f"max users {k} must be at least 1")
        self.k, self.seed = k, seed
        self._heap: list[tuple[int, str]] = []  # (-hash, user): the largest kept hash on top
        self._members: set[str] = set()

    def _hash(self, user: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}:{user}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def admit(self, user: str) -> tuple[bool, str | None]:
        """(is the user kept now, the user it evicted or None)."""
        if self.k is None or user in self._members:
            return True, None
        h = self._hash(user)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, (-h, user))
            self._members.add(user)
            return True, None
        if h >= -self._heap[0][0]:
            return False, None  # the top only shrinks, so this user never gets in
        _, out = heapq.heapreplace(self._heap, (-h, user))
        self._members.discard(out)
        self._members.add(user)
        return True, out


def k_core(rows: Sequence[Row], user_of: Callable[[Row], str], item_of: Callable[[Row], str],
           min_user: int, min_item: int) -> list[Row]:
    """rows left after repeatedly dropping users with fewer than min_user rows and items with
    fewer than min_item rows, until both hold (order kept)."""
    kept = list(rows)
    while True:
        users = Counter(user_of(r) for r in kept)
        items = Counter(item_of(r) for r in kept)
        left = [r for r in kept if users[user_of(r)] >= min_user and items[item_of(r)] >= min_item]
        if len(left) == len(kept):
            return left
        kept = left
