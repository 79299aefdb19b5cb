"""Counters and sync lag of the `parameters` replica, for the stats file and /metrics.

Runtime.apply_parameters applies the records (streams/engine/parameters.py) and reports them
here. The sync lag is apply wall time minus the record's Kafka timestamp (CreateTime: when the
trainer produced it), for records that changed a row. Records already in the topic when the
replica started (the catch-up at start) are not observed: their lag measures how long the
worker was down, not how fast a sync reaches it.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store import StateCodecError, decode_row
from streams.engine.parameters import CHANGED, MAX_VERSION, OUTCOMES, ParamOutcome
from streams.worker.metrics import WorkerMetrics

LAG_WINDOW = 1024  # the most recent lags the stats file's percentiles are taken over


@dataclass
class ParamStats:
    """Records by outcome and the recent sync lags (s) of one worker's parameters replica."""

    counts: Counter = field(default_factory=Counter)
    lags: deque = field(default_factory=lambda: deque(maxlen=LAG_WINDOW))
    lags_observed: int = 0

    def record(self, records: Sequence[Any], outcomes: Sequence[ParamOutcome], live_from: int,
               version: int, metrics: WorkerMetrics) -> None:
        """Count one partition's applied batch; records at offsets >= live_from feed the lag."""
        now = time.time()
        for rec, out in zip(records, outcomes, strict=True):
            self.counts[out.outcome] += 1
            metrics.param_records.labels(outcome=out.outcome).inc()
            ts_ms = getattr(rec, "timestamp", None)
            if out.outcome in CHANGED and rec.offset >= live_from and ts_ms is not None and ts_ms > 0:
                lag = max(0.0, now - ts_ms / 1000.0)  # clamped: the trainer's clock may lead ours
                self.lags.append(lag)
                self.lags_observed += 1
                metrics.param_lag.observe(lag)
        metrics.param_version.set(version)

    def snapshot(self, version: int | None, rows: int | None) -> dict[str, Any]:
        """The stats file's param_* fields (version and rows None: no ID half, nothing read)."""
        recent = np.asarray(self.lags, np.float64)
        p50, p99 = np.percentile(recent, [50, 99]).tolist() if len(recent) else (None, None)
        return {"param_version": version, "param_rows": rows,
                **{f"param_{o}": self.counts[o] for o in OUTCOMES},
                "param_lag_n": self.lags_observed,
                "param_lag_last_s": float(recent[-1]) if len(recent) else None,
                "param_lag_p50_s": p50, "param_lag_p99_s": p99}


def head_version(last_records: Sequence[Any], step: int) -> int:
    """The trainer's version as the newest record of each partition shows it at start: the
    highest that is within `step` of their median, so one forged last record does not set it
    (with one partition there is nothing to compare with, and its record is believed)."""
    versions = []
    for rec in last_records:
        try:
            versions.append(decode_row(bytes(rec.value))[2].version)
        except (StateCodecError, TypeError):  # a tombstone or a bad record says nothing
            continue
    versions = [v for v in versions if v <= MAX_VERSION]
    if not versions:
        return 0
    median = float(np.median(versions))
    return max(v for v in versions if v <= median + step)
