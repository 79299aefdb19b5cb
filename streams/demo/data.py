"""The demo's data: the held-out period of a prepared dataset, the users' earlier history, and a
training copy of the dataset that stops before the held-out period.

Held-out period = the last `holdout` engagements of engagements.jsonl in event time (stable
order). The demo replays its first `events` engagements through the broker; the users' state
is warmed from everything before the period; the quick checkpoint is trained only on
engagements (and validated only on impressions) strictly before the period, so neither the
model nor the warm state has seen what is replayed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.evaluation.metrics import NextEngagement
from model.records import read_jsonl, write_jsonl
from streams.errors import DataError

logger = logging.getLogger(__name__)

CUT_FILES = ("train.jsonl", "valid.jsonl", "test.jsonl", "impressions_valid.jsonl",
             "impressions_test.jsonl")


@dataclass
class HeldOut:
    """What the demo replays and what it warms the users with."""

    cut_ts: float  # event time where the held-out period starts
    replay: list[dict[str, Any]]  # engagements to replay, event-time order
    history: dict[str, list[dict[str, Any]]]  # replayed users' engagements before the period
    items: dict[str, dict[str, Any]]  # item_id -> item (titles for the live view)
    popular: list[str] = dataclasses.field(default_factory=list)  # by engagements before the period

    def popularity_online(self, k: int = 10) -> dict[str, float | int]:
        """Recall/nDCG@k of "most popular before the period, not yet seen" on the same judged
        pairs as the demo (each replayed engagement -> the same user's next one): context."""
        return self.popularity_by(lambda ts: 0, k).get(0, NextEngagement(k).result())

    def popularity_by(self, bucket_of: Callable[[float], int], k: int = 10) -> dict[int, dict[str, float | int]]:
        """popularity_online per bucket of the answered engagement's event time."""
        seen = {u: {e["item_id"] for e in h} for u, h in self.history.items()}
        last: dict[str, float] = {}
        judges: dict[int, NextEngagement] = {}
        for e in self.replay:
            u = e["user_id"]
            if u in last:
                s = seen.setdefault(u, set())
                judge = judges.setdefault(bucket_of(last[u]), NextEngagement(k))
                judge.add([i for i in self.popular[: k + len(s)] if i not in s][:k], e["item_id"])
            seen.setdefault(u, set()).add(e["item_id"])
            last[u] = float(e["ts"])
        return {b: judges[b].result() for b in sorted(judges)}


def held_out(data_dir: Path, holdout: int, events: int) -> HeldOut:
    """Split engagements.jsonl into the earlier history and the first `events` held-out ones."""
    all_events = read_jsonl(data_dir / "engagements.jsonl")
    if len(all_events) < 2:
        raise DataError(f"{data_dir}: too few engagements for a demo")
    holdout = max(1, min(holdout, len(all_events) - 1))
    start = len(all_events) - holdout
    replay = [_contract(e) for e in all_events[start:start + events]]
    users = {e["user_id"] for e in replay}
    history: dict[str, list[dict[str, Any]]] = {}
    for e in all_events[:start]:
        if e["user_id"] in users:
            history.setdefault(e["user_id"], []).append(_contract(e))
    items = {str(it["item_id"]): it for it in read_jsonl(data_dir / "items.jsonl")}
    counts = Counter(str(e["item_id"]) for e in all_events[:start])
    return HeldOut(float(all_events[start]["ts"]), replay, history, items,
                   [i for i, _ in counts.most_common()])


def _contract(e: dict[str, Any]) -> dict[str, Any]:
    """The `engagements` topic fields only (docs/architecture.md, topics and contracts)."""
    return {"user_id": str(e["user_id"]), "item_id": str(e["item_id"]), "ts": float(e["ts"]),
            "kind": e.get("kind", "click")}


def cut_before(src: Path, out: Path, cut_ts: float) -> Path:
    """A copy of the prepared dir `src` keeping only split rows with ts < cut_ts (training data)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "items.jsonl", out / "items.jsonl")
    for name in CUT_FILES:
        if (src / name).exists():
            write_jsonl(out / name, [r for r in read_jsonl(src / name) if float(r["ts"]) < cut_ts])
    meta = json.loads((src / "meta.json").read_text()) if (src / "meta.json").exists() else {}
    meta["demo_cut"] = {"from": str(src), "before_ts": cut_ts}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out


def holdout_of(data_dir: Path) -> int:
    """Default held-out size: 5% of the engagements, at least 200 (MovieLens-100K: 5000)."""
    meta = data_dir / "meta.json"
    n = json.loads(meta.read_text()).get("counts", {}).get("engagements") if meta.exists() else None
    if not n:
        n = sum(1 for _ in (data_dir / "engagements.jsonl").open())
    return max(200, n // 20)
