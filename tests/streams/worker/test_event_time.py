"""Event-time checks: far-future timestamps are rejected, late ones and gaps below the skew pass."""

from __future__ import annotations

import pytest

from streams.kafka.messages import InvalidMessage
from streams.worker.event_time import EventClock

NOW = 1.7e9


def test_a_ts_far_ahead_of_wall_time_is_rejected_even_first():
    clock = EventClock(future_skew_s=86_400, watermark_skew_s=30 * 86_400)
    with pytest.raises(InvalidMessage, match="ahead of wall-clock"):
        clock.check(0, 9.9e15, now=NOW)
    assert clock.watermarks == {}


def test_a_ts_far_ahead_of_the_partition_is_rejected_late_ones_pass():
    clock = EventClock(future_skew_s=86_400, watermark_skew_s=1000)
    clock.check(0, 8.8e8, now=NOW)  # a replay of 1997 data
    clock.check(0, 8.8e8 + 900, now=NOW)
    clock.check(0, 8.8e8 - 5e6, now=NOW)  # late: fine
    with pytest.raises(InvalidMessage, match="ahead of partition 0"):
        clock.check(0, 8.8e8 + 900 + 1001, now=NOW)
    clock.check(1, 1.5e9, now=NOW)  # partitions are independent
    assert clock.watermarks == {0: 8.8e8 + 900, 1: 1.5e9}


def test_an_early_bad_event_within_the_late_window_cannot_reject_later_valid_ones():
    clock = EventClock(future_skew_s=86_400, watermark_skew_s=1000, late_skew_s=365 * 86_400)
    clock.check(0, 8.8e8 + 300 * 86_400, now=NOW)  # wrong (300 days ahead), first: accepted
    for ts in (8.8e8, 8.8e8 + 10):
        clock.check(0, ts, now=NOW)
    assert clock.watermarks == {0: 8.8e8 + 300 * 86_400}


def test_a_ts_far_behind_the_partition_is_rejected():
    clock = EventClock(future_skew_s=86_400, watermark_skew_s=1000, late_skew_s=365 * 86_400)
    clock.check(0, 8.8e8, now=NOW)  # a 1997 user
    with pytest.raises(InvalidMessage, match="behind partition 0"):
        clock.check(0, 1.0, now=NOW)  # 1970 would join the 1997 user's history
    clock.check(0, 8.8e8 - 364 * 86_400, now=NOW)  # late, inside the window: fine
    clock.check(1, 1.0, now=NOW)  # another partition has its own clock
    assert clock.watermarks == {0: 8.8e8, 1: 1.0}
