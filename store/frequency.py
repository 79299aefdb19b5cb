"""Monolith-style frequency filter: count engagements per user in a count-min sketch."""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from .binary import Writer, open_frame
from .config import FrequencyConfig
from .errors import StateCodecError

logger = logging.getLogger(__name__)

_MAGIC, _FORMAT = b"TRFF", 1
_MAX = np.iinfo(np.uint32).max


class FrequencyFilter:
    """Counts never under-estimate; over-estimates are bounded by the sketch width.

    A fixed-size table (depth x width uint32) whatever the number of passers-by; counters
    halve every `decay_every` observations so occasional users fade out.
    """

    def __init__(self, config: FrequencyConfig | None = None) -> None:
        self.config = config or FrequencyConfig()
        if not 1 <= self.config.depth <= 16:
            raise ValueError("FrequencyConfig.depth must be in 1..16")
        self._table = np.zeros((self.config.depth, self.config.width), np.uint32)
        self._rows = np.arange(self.config.depth)
        self.observations = 0

    def _cells(self, user_id: str) -> np.ndarray:
        digest = hashlib.blake2b(
            user_id.encode("utf-8"), digest_size=4 * self.config.depth
        ).digest()
        return np.frombuffer(digest, "<u4") % self.config.width

    def observe(self, user_id: str, count: int = 1) -> int:
        """Record `count` engagements of user_id; return the user's estimated total."""
        cols = self._cells(user_id)
        current = self._table[self._rows, cols]
        estimate = min(int(current.min()) + count, int(_MAX))
        # conservative update: raise only the counters below the new estimate (less over-count)
        self._table[self._rows, cols] = np.maximum(current, estimate)
        self.observations += 1
        if self.config.decay_every and self.observations % self.config.decay_every == 0:
            self.decay()
        return estimate

    def count(self, user_id: str) -> int:
        """Estimated engagements of user_id (>= the true count since the last decay)."""
        return int(self._table[self._rows, self._cells(user_id)].min())

    def counts(self, keys: list[str]) -> np.ndarray:
        """(N,) int64: count() of each key, in one gather (a hash per key, no per-key numpy call)."""
        if not keys:
            return np.zeros(0, np.int64)
        digests = b"".join(hashlib.blake2b(k.encode("utf-8"), digest_size=4 * self.config.depth).digest()
                           for k in keys)
        cols = np.frombuffer(digests, "<u4").reshape(len(keys), self.config.depth) % self.config.width
        return self._table[self._rows, cols].min(axis=1).astype(np.int64)

    def weight(self) -> float:
        """What every count sums to without collisions: the observations, each halved by every
        decay since it was made."""
        every = self.config.decay_every
        if not every:
            return float(self.observations)
        decays, rest = divmod(self.observations, every)
        return rest + every * (1.0 - 0.5 ** decays)

    def admitted(self, user_id: str) -> bool:
        """True once user_id has at least min_count engagements: give it personalised state."""
        return self.count(user_id) >= self.config.min_count

    def decay(self) -> None:
        """Halve every counter."""
        self._table >>= 1
        logger.debug("frequency filter decayed after %d observations", self.observations)

    def to_bytes(self) -> bytes:
        w = Writer()
        w.pack("Q", self.observations)
        w.array(self._table, "<u4")
        return w.frame(_MAGIC, _FORMAT)

    @classmethod
    def from_bytes(cls, data: bytes, config: FrequencyConfig | None = None) -> FrequencyFilter:
        _, r = open_frame(data, _MAGIC, {_FORMAT}, "frequency filter")
        (observations,) = r.unpack("Q")
        table = r.array("<u4", 2)
        r.finish()
        self = cls(config)
        if table.shape != self._table.shape:
            raise StateCodecError(
                f"frequency filter: table {table.shape} != config {self._table.shape}"
            )
        self._table, self.observations = table, observations
        return self
