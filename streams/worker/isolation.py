"""Per-record isolation: which failures belong to one record, and which stop the worker.

Any exception raised while handling one record (decode, validate, apply, encode) is that
record's: it is dead-lettered with the exception as the reason and the batch goes on. Only
the infrastructure may stop a worker: the disk, memory, a closed store, the broker or the
dead-letter topic (our own fatal errors), or a run of consecutive records failing the same
unexpected way, which says the fault is ours, not theirs (dead-lettering every valid record
would lose them all quietly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from store.errors import StoreClosedError
from streams.errors import ThreadrecError

logger = logging.getLogger(__name__)

INFRASTRUCTURE = (OSError, MemoryError, StoreClosedError, ThreadrecError)


class PoisonStorm(ThreadrecError):
    """Too many records in a row failed unexpectedly: a systemic fault, not bad input."""


def is_infrastructure(exc: BaseException) -> bool:
    """Failures no single record can cause: they stop the worker instead of a dead letter."""
    return isinstance(exc, INFRASTRUCTURE) or not isinstance(exc, Exception)


@dataclass
class PoisonBreaker:
    """Counts records dead-lettered for an unexpected exception; `limit` in a row is a storm."""

    limit: int = 32
    in_a_row: int = 0
    total: int = 0

    def failed(self, exc: BaseException) -> None:
        """One record failed unexpectedly: re-raise infrastructure, count the rest."""
        if is_infrastructure(exc):
            raise exc
        self.in_a_row += 1
        self.total += 1
        if self.in_a_row >= self.limit:
            raise PoisonStorm(f"{self.in_a_row} records in a row failed unexpectedly; last: "
                              f"{type(exc).__name__}: {exc}") from exc

    def succeeded(self) -> None:
        self.in_a_row = 0
