"""Event-time sanity per engagements partition: a `ts` far ahead of wall time or of what the
partition has shown so far, or far behind it, is rejected before it can touch a user's state.

Why: one engagement with ts = 9.9e15 used to pass, wipe the user's history through TTL expiry
and pin `last_seen` in the far future; one with ts = 1 (1970) became part of a 1998 user's
history. A late event is normal in a stream, so the window behind the partition's highest
accepted ts (late_skew_s, a year by default) is wide; an accepted event can lead that mark by
at most watermark_skew_s, so one early bad event moves the window by that much at most. The
first event of a partition has no mark to lead: an early bad one that is then the mark can
reject valid events behind it by more than late_skew_s (a replay's gaps stay below it). The
watermark lives in memory; after a restart the first accepted event of a partition starts it
again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streams.kafka.messages import InvalidMessage


@dataclass
class EventClock:
    """Highest accepted event time per partition, and the skews allowed ahead of it."""

    future_skew_s: float  # ahead of wall-clock time
    watermark_skew_s: float  # ahead of the partition's highest accepted ts
    late_skew_s: float = 365 * 86_400.0  # behind the partition's highest accepted ts
    watermarks: dict[int, float] = field(default_factory=dict)

    def check(self, partition: int, ts: float, now: float | None = None) -> None:
        """Raise InvalidMessage('bad ts') for an event too far ahead or behind; else advance
        the mark."""
        now = time.time() if now is None else now
        if ts > now + self.future_skew_s:
            raise InvalidMessage("bad ts", f"{ts!r} is {ts - now:.0f}s ahead of wall-clock time "
                                           f"(future_skew_s {self.future_skew_s:.0f})")
        mark = self.watermarks.get(partition)
        if mark is not None and ts > mark + self.watermark_skew_s:
            raise InvalidMessage("bad ts", f"{ts!r} is {ts - mark:.0f}s ahead of partition "
                                           f"{partition}'s event time (watermark_skew_s "
                                           f"{self.watermark_skew_s:.0f})")
        if mark is not None and ts < mark - self.late_skew_s:
            raise InvalidMessage("bad ts", f"{ts!r} is {mark - ts:.0f}s behind partition "
                                           f"{partition}'s event time (late_skew_s "
                                           f"{self.late_skew_s:.0f})")
        self.watermarks[partition] = ts if mark is None else max(mark, ts)
