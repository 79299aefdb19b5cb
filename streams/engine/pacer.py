"""How much of a large apply (a parameter sync, a burst of item vectors) one hold of the engine
lock takes, and how much of the time the summary lane runs beside engagement batches. Plain
Python and light: the worker's settings read its defaults without loading the model stack."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class ApplyPacer:
    """How many records the next hold of the engine lock applies. The rule: a slice may take
    `share` of the time an engagement batch takes (a moving average of the batches seen), at most
    `budget_s` and at least `floor_s`, and holds as many records as fit that at the cost per
    record measured so far, at least `least` and at most `most`. An engagement batch that waits
    for the lock behind a slice then takes about (1 + share) times as long, whatever the size of
    the sync. A slice has fixed costs too (index and gate calls, 0.2-0.4 ms here); measured per
    record they settle the slice where fixed + per-record costs fill the time allowed, and
    `least` keeps a slice from shrinking to one record where the fixed costs alone exceed it.
    `min_per_s` is a rate floor: however long the batches (a saturated worker's run to seconds,
    where `budget_s` alone would let through ~32 records per batch), a slice holds at least the
    records that keep the apply at that rate across a batch and the slice itself, so a catalogue
    doubling or a large sync ends in bounded time; it costs serving min_per_s x the cost per record
    of its time (6% at 1,000/s and 60 us), and nothing while the backlog is empty."""

    budget_s: float
    most: int
    # 1 + share is the nominal wait of a batch behind a slice: 0.25 leaves room under the 1.5x
    # p99 bound for the noise of a slice's cost (0.4 measured 1.26-1.69x); the apply rate it
    # leaves a busy worker, share / (1 + share) of its time, is still ~30x a 1M-row sync's
    share: float = 0.25
    floor_s: float = 2e-4
    least: int = 32
    per_record_s: float = 0.0  # measured; 0 before the first slice, which takes `first` records
    batch_s: float = 0.0  # measured; 0 before the first engagement batch: budget_s applies
    first: int = 64
    min_per_s: float = 0.0  # the rate floor (records/s; 0: none)

    def allowed_s(self) -> float:
        """Seconds the next slice may hold the lock."""
        if self.batch_s <= 0:
            return self.budget_s
        return min(self.budget_s, max(self.floor_s, self.share * self.batch_s))

    def next(self) -> int:
        """Records for the next slice."""
        if self.per_record_s <= 0:
            return max(1, min(self.most, self.first))
        by_share = max(self.least, int(self.allowed_s() / self.per_record_s))
        return max(1, min(self.most, max(by_share, self.by_floor())))

    def by_floor(self) -> int:
        """Records that hold `min_per_s` over one batch plus the slice: n / (batch_s + n x
        per_record_s) = min_per_s; `most` where the floor outruns the cost per record."""
        busy = self.min_per_s * self.per_record_s  # the share of time the floor takes
        if self.min_per_s <= 0 or self.batch_s <= 0:
            return 0
        if busy >= 1.0:
            return self.most
        return math.ceil(self.min_per_s * self.batch_s / (1.0 - busy))

    def took(self, records: int, seconds: float) -> None:
        """A slice of `records` took `seconds` under the lock."""
        if records > 0:
            self.per_record_s = _moving(self.per_record_s, seconds / records)

    def served(self, seconds: float) -> None:
        """An engagement batch took `seconds`."""
        self.batch_s = _moving(self.batch_s, seconds)


def _moving(average: float, value: float) -> float:
    """The exponential moving average (weight 0.3 on the new value; the first value as is)."""
    return value if average <= 0 else 0.7 * average + 0.3 * value


@dataclass
class LaneDuty:
    """How much of the time the lane may run beside engagement batches: after a run that began
    beside one (its jobs overdue), it rests so that such runs take at most `share` of the wall
    time; between batches it runs freely (idle cores are its own). Under overload every job is
    overdue, and an unbounded lane took a core and the GIL from recommendations."""

    share: float
    rest_until: float = 0.0  # monotonic time before which the lane does not start beside a batch

    def allows(self, engine_busy: bool, now: float) -> bool:
        """Whether a run may start now."""
        return not engine_busy or now >= self.rest_until

    def ran(self, engine_busy: bool, seconds: float, now: float) -> None:
        """A run that started beside a batch (engine_busy) or not took `seconds`, ending now."""
        if engine_busy:
            self.rest_until = now + seconds * (1.0 - self.share) / self.share
