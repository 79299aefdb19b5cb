"""The demo's numbers: latency, throughput and online Recall/nDCG@10 from what was read back.

Latency of a recommendation = its arrival at the demo's consumer minus the produce time of the
engagement it answers (the engagement record's Kafka timestamp; same machine clock). Online
metrics judge each recommendation against the same user's next engagement in the replay;
recommendations after a user's last replayed engagement have nothing to be judged against.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.evaluation.metrics import NextEngagement
from streams.demo.collect import Collected

logger = logging.getLogger(__name__)

K = 10


@dataclass
class Judged:
    """One recommendation matched to its engagement and to that user's next engagement."""

    user_id: str
    item_id: str  # the engagement it answers
    next_item: str | None
    items: list[str]
    scores: list[float]
    summary: str | None
    latency_s: float
    ts: float = 0.0  # event time of the engagement it answers
    param_version: int | None = None  # the ID rows' sync version it was scored with
    ingest_s: float | None = None  # engagement produced -> readable by a consumer (load side)

    @property
    def rank(self) -> int | None:
        """0-based rank of the next engagement in the top K, None when absent."""
        top = self.items[:K]
        return top.index(self.next_item) if self.next_item in top else None


@dataclass
class Report:
    engagements_in: int
    recommendations_out: int
    deadlettered: int
    latencies_s: list[float]
    wall_s: float
    judged: list[Judged] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def online(self) -> dict[str, float | int]:
        """Recall/nDCG@K of the recommendations that have a next engagement to be judged by."""
        judge = NextEngagement(K)
        for j in self.judged:
            if j.next_item is not None:
                judge.add(j.items, j.next_item)
        return judge.result()

    def as_json(self) -> dict[str, Any]:
        ingest = [j.ingest_s for j in self.judged if j.ingest_s is not None]
        return {"engagements_in": self.engagements_in,
                "recommendations_out": self.recommendations_out,
                "deadlettered": self.deadlettered,
                "latency_ms": _percentiles(self.latencies_s),
                # how long an engagement took to become readable at all: the load side's share
                "ingest_ms": _percentiles(ingest),
                "events_per_s": self.engagements_in / self.wall_s if self.wall_s > 0 else 0.0,
                "wall_s": self.wall_s, "online": self.online(), **self.extra}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds, np.float64) * 1000.0
    if not len(ms):
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()), "max": float(ms.max())}


def match(data: Collected) -> list[Judged]:
    """Recommendations joined with their engagements (by partition/offset) and the next one."""
    with data.lock:
        engagements = dict(data.engagements)
        produce_ts, seen_ts = dict(data.produce_ts), dict(data.seen_ts)
        recs = list(data.recommendations)
    nxt = next_engagements(engagements)
    out = []
    for rec in recs:
        src = rec.value.get("source") or {}
        pos = (src.get("partition"), src.get("offset"))
        eng = engagements.get(pos)
        if eng is None:
            continue
        out.append(Judged(eng["user_id"], eng["item_id"], nxt.get(pos),
                          [x["item_id"] for x in rec.value["items"]],
                          [x["score"] for x in rec.value["items"]], rec.value.get("summary"),
                          rec.arrival_ts - produce_ts[pos], float(eng["ts"]),
                          rec.value.get("param_version"),
                          max(0.0, seen_ts[pos] - produce_ts[pos]) if pos in seen_ts else None))
    return out


def by_bucket(judged: list[Judged], bucket_of: Callable[[float], int]) -> dict[int, dict[str, float | int]]:
    """Recall/nDCG@K per bucket of the answered engagement's event time (e.g. per event-day)."""
    judges: dict[int, NextEngagement] = {}
    for j in judged:
        if j.next_item is not None:
            judges.setdefault(bucket_of(j.ts), NextEngagement(K)).add(j.items, j.next_item)
    return {b: judges[b].result() for b in sorted(judges)}


def next_engagements(engagements: dict[tuple[int, int], dict]) -> dict[tuple[int, int], str]:
    """(partition, offset) -> the item of the same user's next engagement (offset order)."""
    by_user: dict[str, list[tuple[tuple[int, int], dict]]] = {}
    for pos, e in sorted(engagements.items()):
        by_user.setdefault(e["user_id"], []).append((pos, e))
    out = {}
    for seq in by_user.values():
        for (pos, _), (_, later) in zip(seq, seq[1:], strict=False):
            out[pos] = later["item_id"]
    return out


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), indent=2) + "\n")


def plot_latency(report: Report, path: Path) -> None:
    """Histogram of event-to-recommendation latency with p50/p99 marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = np.asarray(report.latencies_s) * 1000.0
    summary = report.as_json()["latency_ms"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(lat, bins=min(60, max(5, len(lat) // 10)), color="#4c72b0")
    for q, style in (("p50", "--"), ("p99", ":")):
        ax.axvline(summary[q], color="k", linestyle=style, label=f"{q} {summary[q]:.0f} ms")
    ax.set_xlabel("engagement produced -> recommendation received (ms)")
    ax.set_ylabel("recommendations")
    ax.set_title(f"threadrec demo: {report.recommendations_out} recommendations")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
