"""Reader of a prepared data directory (docs/data-format.md) into splits; no streams imports."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.errors import DataDirError
from model.records import ENGAGED_KINDS, read_jsonl

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Items by id, engagements per split (event-time order), impressions and meta."""

    root: Path
    items: dict[str, dict[str, Any]]
    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]
    test: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def impressions(self, split: str) -> list[dict[str, Any]]:
        """impressions_{split}.jsonl rows."""
        return read_jsonl(self.root / f"impressions_{split}.jsonl")

    @property
    def cold_items(self) -> frozenset[str]:
        """Items held out of training by a cold-item split (meta.json "cold_items"; docs/data-format.md):
        never a training target, never an ID row, never counted by a baseline."""
        return frozenset(str(i) for i in self.meta.get("cold_items", ()))


def _engaged(rows: list[dict[str, Any]], items: dict[str, dict], name: str) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rows, 1):
        if "user_id" not in r or "item_id" not in r or "ts" not in r:
            raise DataDirError(f"{name}:{i}: needs user_id, item_id and ts")
        if r.get("kind", "click") in ENGAGED_KINDS and r["item_id"] in items:
            out.append(r)
    return out


def load_prepared(root: str | Path) -> PreparedData:
    """Load items and the three splits (impressions are read on demand)."""
    root = Path(root)
    if not root.is_dir():
        raise DataDirError(f"data directory {root} does not exist")
    items = {str(it["item_id"]): it for it in read_jsonl(root / "items.jsonl")}
    splits = {s: _engaged(read_jsonl(root / f"{s}.jsonl"), items, f"{root}/{s}.jsonl")
              for s in ("train", "valid", "test")}
    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    logger.info("loaded %s: %d items, %d train engagements", root, len(items), len(splits["train"]))
    return PreparedData(root, items, splits["train"], splits["valid"], splits["test"], meta)


def histories(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Engagements grouped by user, kept in file (event-time, stable) order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r["user_id"]), []).append(r)
    return out


def event_rows(data: PreparedData) -> list[dict[str, Any]]:
    """Every split's engagements from engagements.jsonl (no impressions, known items), event-time order."""
    return [e for e in read_jsonl(data.root / "engagements.jsonl")
            if e.get("kind", "click") in ENGAGED_KINDS and str(e["item_id"]) in data.items]


def holdout_cutoff(rows: list[dict[str, Any]], holdout_events: int) -> float:
    """Event time T that leaves the last holdout_events rows after it.

    +inf (nothing held out) when holdout_events <= 0; -inf (everything) when it covers every row.
    """
    if holdout_events <= 0:
        return float("inf")
    return float(rows[-holdout_events - 1]["ts"]) if holdout_events < len(rows) else float("-inf")
