"""The cold-item split: a copy of a prepared directory whose meta names items held out of training.

Candidates are the items first engaged in the last `late_share` of the timeline (counted in
engagements, event-time order), so a held-out item looks like a real newcomer; `fraction` of
all engaged items is drawn from them with a seed. The split files are unchanged: cold items may
still appear in histories as content; training, ID rows and baselines skip them as targets
(model.dataset.PreparedData.cold_items). docs/data-format.md describes the key.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from model.records import ENGAGED_KINDS, read_jsonl
from streams.errors import DataError


def choose_cold(rows: list[dict[str, Any]], fraction: float, seed: int,
                late_share: float = 0.3) -> tuple[list[str], dict[str, Any]]:
    """(sorted cold item ids, the split's description) from engagements in event-time order."""
    if not 0 < fraction < 1 or not 0 < late_share <= 1:
        raise DataError(f"cold split: fraction {fraction} and late share {late_share} must be in (0, 1)")
    first: dict[str, int] = {}
    for k, e in enumerate(rows):
        first.setdefault(str(e["item_id"]), k)
    cutoff = int(len(rows) * (1 - late_share))
    late = sorted(i for i, k in first.items() if k >= cutoff)
    want = round(fraction * len(first))
    chosen = sorted(random.Random(seed).sample(late, min(want, len(late))))
    info = {"fraction": fraction, "seed": seed, "late_share": late_share, "engaged_items": len(first),
            "candidates": len(late), "wanted": want, "chosen": len(chosen),
            "rule": f"items first engaged after engagement #{cutoff} of {len(rows)} (event-time order)"}
    return chosen, info


def write_cold_split(src: Path, out: Path, fraction: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Copy the prepared directory src to out and record the cold items in out/meta.json."""
    src, out = Path(src), Path(out)
    if not (src / "meta.json").exists():
        raise DataError(f"{src}: not a prepared data directory (no meta.json)")
    rows = [e for e in read_jsonl(src / "engagements.jsonl") if e.get("kind", "click") in ENGAGED_KINDS]
    rows.sort(key=lambda e: float(e["ts"]))  # stable: ties keep file order
    cold, info = choose_cold(rows, fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    for f in src.glob("*.jsonl"):
        shutil.copy2(f, out / f.name)
    meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
    test_users = {str(e["user_id"]) for e in read_jsonl(src / "test.jsonl") if str(e["item_id"]) in set(cold)}
    meta.update({"cold_items": cold, "cold_split": {**info, "test_users_with_cold_target": len(test_users)}})
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta
