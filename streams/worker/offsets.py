"""Per-partition offset continuity of the engagements stream: process, skip or repair.

faust-streaming can skip events it fetched under an older consumer generation during the
rebalances at start-up; once later events are acked the committed offset moves past the
skipped ones and they are never delivered again (faust-streaming #216/#221, see
docs/faust-rebalance-gap.md). The worker therefore keeps the next expected offset of each
input partition and compares every event against it. This module is only that decision;
fetching the missing records is streams/kafka/gap_fetcher.py, wiring is streams/worker/batch.py.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    PROCESS = "process"  # the next offset (or nothing known yet): handle it
    DUPLICATE = "duplicate"  # already handled (redelivered after a restart/rebalance): skip it
    REPAIR = "repair"  # offsets were skipped: handle `missing` first, then this event


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    missing: range = range(0)  # the skipped offsets, only for REPAIR


def decide(expected: int | None, offset: int) -> Decision:
    """What to do with the event at `offset` when `expected` is the next unhandled offset."""
    if expected is None or offset == expected:
        return Decision(Verdict.PROCESS)
    if offset < expected:
        return Decision(Verdict.DUPLICATE)
    return Decision(Verdict.REPAIR, range(expected, offset))


@dataclass
class PartitionCursor:
    """The next expected offset per partition while walking one batch in delivery order.

    Each event is checked, then accepted; accepting moves the partition past it whether
    or not the repaired range came back complete (compacted records and transaction
    markers occupy offsets but are never returned).
    """

    expected: dict[int, int | None] = field(default_factory=dict)
    moved: set[int] = field(default_factory=set)  # partitions whose expected offset changed

    @classmethod
    def starting_at(cls, expected: Mapping[int, int | None]) -> PartitionCursor:
        return cls(dict(expected))

    def check(self, partition: int, offset: int) -> Decision:
        return decide(self.expected.get(partition), offset)

    def accept(self, partition: int, offset: int) -> None:
        """`offset` was handled: the partition now expects the offset after it."""
        current = self.expected.get(partition)
        if current is None or offset + 1 > current:
            self.expected[partition] = offset + 1
            self.moved.add(partition)
