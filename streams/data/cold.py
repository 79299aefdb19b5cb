"""The cold-item split: items held out of training, named in meta.json (docs/data-format.md).

Candidates are the items whose first positive engagement falls in the last `late_share` of the
timeline, counted in engagements (event-time order) rather than in seconds: Goodreads' `read_at`
reaches back decades and MIND's injected history clusters before impressions, so a time-span
cut would make nearly every item (or none) late. `fraction` of all engaged items is drawn from
the candidates with a seed, all of them when there are fewer. The split files are unchanged:
cold items may still appear in histories as content; training, ID rows and baselines skip them
as targets (model.dataset.PreparedData.cold_items). `data prepare --cold-items` adds the split
while preparing; `data cold` adds it to a copy of a prepared directory.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from model.records import ENGAGED_KINDS, read_jsonl
from streams.data.records import Engagement
from streams.data.split import Split
from streams.errors import DataError

LATE_SHARE = 0.3


def check_fraction(fraction: float) -> float:
    """fraction if it is a usable cold share (0 = off); DataError otherwise."""
    if not 0 <= fraction < 1:
        raise DataError(f"cold split: fraction {fraction} must be in [0, 1) (0 = no cold split)")
    return fraction


def choose_cold(item_order: Sequence[str], fraction: float, seed: int,
                late_share: float = LATE_SHARE) -> tuple[list[str], dict[str, Any]]:
    """(sorted cold item ids, the split's description) from positive engagements' item ids in
    event-time order."""
    if not 0 < fraction < 1 or not 0 < late_share <= 1:
        raise DataError(f"cold split: fraction {fraction} and late share {late_share} must be in (0, 1)")
    first: dict[str, int] = {}
    for k, item in enumerate(item_order):
        first.setdefault(item, k)
    cutoff = int(len(item_order) * (1 - late_share))
    late = sorted(i for i, k in first.items() if k >= cutoff)
    want = round(fraction * len(first))
    chosen = sorted(random.Random(seed).sample(late, min(want, len(late))))
    info: dict[str, Any] = {
        "fraction": fraction, "seed": seed, "late_share": late_share, "engaged_items": len(first),
        "candidates": len(late), "wanted": want, "chosen": len(chosen),
        "rule": f"items first engaged at or after engagement #{cutoff} of {len(item_order)} "
                "(positive engagements, event-time order)"}
    if len(late) < want:
        info["note"] = f"only {len(late)} candidates for the {want} wanted: all of them are cold"
    return chosen, info


def users_with_cold_target(pairs: Iterable[tuple[str, str]], cold: Iterable[str]) -> int:
    """How many users have a cold item among their (user, item) targets."""
    held = set(cold)
    return len({u for u, i in pairs if i in held})


def cold_meta(engagements: Sequence[Engagement], split: Split, fraction: float,
              seed: int) -> dict[str, Any]:
    """meta.json keys `cold_items` and `cold_split` for a prepared log; {} when fraction is 0."""
    if not check_fraction(fraction):
        return {}
    cold, info = choose_cold([e.item_id for e in engagements if e.positive], fraction, seed)
    for name in ("valid", "test"):
        rows = getattr(split, name)
        info[f"{name}_users_with_cold_target"] = users_with_cold_target(
            ((e.user_id, e.item_id) for e in rows if e.positive), cold)
    return {"cold_items": cold, "cold_split": info}


def _positives(path: Path) -> list[dict[str, Any]]:
    return [e for e in read_jsonl(path) if e.get("kind", "click") in ENGAGED_KINDS]


def write_cold_split(src: Path, out: Path, fraction: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Copy the prepared directory src to out and record the cold items in out/meta.json."""
    src, out = Path(src), Path(out)
    if not (src / "meta.json").exists():
        raise DataError(f"{src}: not a prepared data directory (no meta.json)")
    rows = _positives(src / "engagements.jsonl")
    rows.sort(key=lambda e: float(e["ts"]))  # stable: ties keep file order
    cold, info = choose_cold([str(e["item_id"]) for e in rows], fraction, seed)
    for name in ("valid", "test"):
        pairs = ((str(e["user_id"]), str(e["item_id"])) for e in _positives(src / f"{name}.jsonl"))
        info[f"{name}_users_with_cold_target"] = users_with_cold_target(pairs, cold)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    for f in src.glob("*.jsonl"):
        shutil.copy2(f, out / f.name)
    meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
    meta.update({"cold_items": cold, "cold_split": info})
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def cold_summary(info: dict[str, Any]) -> str:
    """One line for the prepare / cold summaries."""
    return (f"cold items {info['chosen']:,} of {info['candidates']:,} late candidates "
            f"(wanted {info['wanted']:,}); test users with a cold target "
            f"{info['test_users_with_cold_target']:,}, valid {info['valid_users_with_cold_target']:,}")
