"""Prometheus metrics of one worker (prometheus_client), served on metrics_host:metrics_port.

Counters and histograms are fed by the batch path (worker/batch.py) and the outbox; gauges
that describe the consumer (lag per partition, replica catch-up) are refreshed by a timer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

# seconds: a model call on CPU is tens of ms per event, a whole batch up to seconds
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
E2E_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class WorkerMetrics:
    """The series an operator scrapes; one registry per worker (tests make several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.events = Counter("threadrec_engagements", "engagements read", registry=r)
        self.recommendations = Counter("threadrec_recommendations", "recommendations sent",
                                       registry=r)
        self.dead_letters = Counter("threadrec_dead_letters", "records dead-lettered",
                                    ["source", "reason"], registry=r)
        self.send_retries = Counter("threadrec_send_retries", "output sends retried", registry=r)
        self.stage = Histogram("threadrec_stage_seconds", "time per batch in each stage",
                               ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.e2e = Histogram("threadrec_end_to_end_seconds",
                             "engagement record timestamp to recommendation sent",
                             buckets=E2E_BUCKETS, registry=r)
        self.lag = Gauge("threadrec_consumer_lag", "engagement records not yet read",
                         ["partition"], registry=r)
        self.replica_behind = Gauge("threadrec_item_replica_behind",
                                    "item records up to the start end offsets not yet applied",
                                    registry=r)
        self.replica_wait = Gauge("threadrec_item_replica_wait_seconds",
                                  "how long serving waited for the replicas (items, parameters)",
                                  registry=r)
        self.param_replica_behind = Gauge("threadrec_parameter_replica_behind",
                                          "parameter records up to the start end offsets not yet "
                                          "applied", registry=r)
        self.param_version = Gauge("threadrec_parameter_version",
                                   "sync version of the ID rows served (0: checkpoint rows only)",
                                   registry=r)
        self.param_records = Counter("threadrec_parameter_records", "parameters records read",
                                     ["outcome"], registry=r)
        self.param_lag = Histogram("threadrec_parameter_sync_lag_seconds",
                                   "parameter record timestamp (trainer) to row applied",
                                   buckets=E2E_BUCKETS, registry=r)
        self.summary_staleness = Histogram("threadrec_summary_staleness_events",
                                           "engagements since the user's summary was refreshed",
                                           buckets=(0, 1, 2, 5, 10, 20, 50, 100), registry=r)
        self.state_errors = Counter("threadrec_state_decode_errors",
                                    "stored user states that did not decode (user restarted)",
                                    registry=r)
        self.model_version = Gauge("threadrec_model_info", "model (and parameter) version in use",
                                   ["version"], registry=r)

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics over HTTP on host:port (a daemon thread)."""
        start_http_server(port, addr=host, registry=self.registry)
        logger.info("metrics on http://%s:%d/metrics", host, port)

    def dead_letter(self, source: str, error: str) -> None:
        self.dead_letters.labels(source=source, reason=error.split(":", 1)[0]).inc()

    def stages(self, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.stage.labels(stage=stage).observe(s)

    def sent(self, source_ts: Iterable[float | None]) -> None:
        """Recommendations confirmed sent, with their engagements' record timestamps (s)."""
        now = time.time()
        for ts in source_ts:
            self.recommendations.inc()
            if ts:
                self.e2e.observe(max(0.0, now - ts))
