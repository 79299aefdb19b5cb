"""A worker's counters as a JSON file, rewritten every few seconds (demo and benchmark read it).

Holds the engine's counters (model_s, store_s, index_s, ...), the time the engagements agent
spent per batch in total (agent_s: engine + validation + table reads/writes + sends),
whether the worker has its partitions, finished table recovery and caught up its replicas
(ready; tables_recovered and replicas_current apart, for start-up timing), the longest event-loop
hold of an expiry sweep slice (sweep_max_block_ms), the item-vectors slices applied while serving
the longest hold of the engine lock by one and the most records in one (item_slices, item_hold_max_ms, item_slice_max), the offset continuity counters (gaps_repaired, records_reread, duplicates_skipped,
redeliveries_reapplied, tails_repaired),
and parameter sync (param_version, param_rows, param_<outcome> counts, param_lag_* seconds;
see streams/worker/parameters.py).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import faust

from durable import write_atomic
from streams.worker.runtime import Runtime
from streams.worker.timers import safe_timer

logger = logging.getLogger(__name__)


def worker_ready(app: faust.App) -> bool:
    """Partitions assigned, not rebalancing, table recovery done."""
    try:
        return (bool(app.assignor.assigned_actives()) and not app.rebalancing
                and app.tables.recovery.completed.is_set())
    except AttributeError:  # not started yet
        return False


def tables_recovered(app: faust.App) -> bool:
    """Table recovery (the changelogs read back into the local stores) has completed."""
    try:
        return app.tables.recovery.completed.is_set()
    except AttributeError:  # not started yet
        return False


def snapshot(app: faust.App, runtime: Runtime) -> dict[str, Any]:
    """Everything the stats file holds, as one dict."""
    return {**runtime.engine.stats.as_dict(), "agent_s": runtime.agent_s,
            "bad_items": runtime.bad_items, "bad_vectors": runtime.bad_vectors,
            "unknown_tombstones": runtime.unknown_tombstones,
            "ready": worker_ready(app) and runtime.replicas_current(),
            "tables_recovered": tables_recovered(app), "replicas_current": runtime.replicas_current(),
            "sweep_max_block_ms": 1000 * runtime.sweep_block_max_s,
            "item_slices": runtime.item_slices, "item_hold_max_ms": 1000 * runtime.item_hold_max_s,
            "item_slice_max": runtime.item_slice_max,
            "replica_wait_s": runtime.replica_wait_s, "replica_stalls": runtime.replica_stalls,
            **runtime.send_counts,
            # faust rebalance gaps (docs/faust-rebalance-gap.md)
            "gaps_repaired": runtime.gaps_repaired, "records_reread": runtime.records_reread,
            "duplicates_skipped": runtime.duplicates_skipped,
            "redeliveries_reapplied": runtime.redeliveries_reapplied,
            "tails_repaired": runtime.tails_repaired,
            "poison_records": runtime.breaker.total,  # dead-lettered for an unexpected exception
            "replica_letters_known": runtime.replica_letters_known,
            **runtime.param_snapshot(),
            **{k: v for k, v in runtime.engine.status().items() if not k.startswith("id_")},
            "pid": os.getpid(), "written_ts": time.time()}


def register_stats(app: faust.App, runtime: Runtime, path: Path, every_s: float) -> None:
    """A faust timer that rewrites `path` every `every_s` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)

    @safe_timer(app, every_s, "stats file not written")
    async def write_stats() -> None:
        write_atomic(path, json.dumps(snapshot(app, runtime)), sync=False)  # a reader never sees half


def read_stats(path: Path) -> dict[str, Any] | None:
    """The last stats a worker wrote, or None before the first write."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def register_metrics(app: faust.App, runtime: Runtime, engagements_topic: str,
                     every_s: float) -> None:
    """A faust timer that refreshes the gauges: lag per engagements partition, replicas."""

    @safe_timer(app, every_s, "metrics gauges not refreshed")
    async def refresh_gauges() -> None:
        await _refresh_gauges(app, runtime, engagements_topic)


async def _refresh_gauges(app: faust.App, runtime: Runtime, engagements_topic: str) -> None:
    m = runtime.metrics
    for tp in app.consumer.assignment():
        high = app.consumer.highwater(tp)  # None until the first fetch of the partition
        if tp.topic != engagements_topic or high is None:
            continue
        handled = runtime.handled.get(tp.partition)
        if handled is None:
            handled = await app.consumer.position(tp) or 0
        m.lag.labels(partition=str(tp.partition)).set(max(0, high - handled))
    if runtime.replicator is not None:
        m.replica_behind.set(runtime.replicator.behind())
    if runtime.param_replica is not None:
        m.param_replica_behind.set(runtime.param_replica.behind())
