"""MIND (Microsoft News) behaviors.tsv + news.tsv -> prepared directory.

Split mapping (documented in meta.json too):
- `--from` with train and dev sets (subdirs `MIND*_train`/`MIND*_dev` or `train`/`dev`):
  dev impressions -> test; the last `valid_fraction` of train impressions by time -> valid;
  the other train impressions -> train.
- `--from` a single directory with behaviors.tsv: impressions by time, the last
  `valid_fraction` -> test, the `valid_fraction` before that -> valid, the rest -> train.
Clicks are `click` engagements, shown-but-not-clicked are `impression` events, and
history items the user had not yet been seen with become `click` engagements 1 ms
apart just before that impression (order kept). History items are always in train,
whatever the impression's split: they are what the model may read about the user at
that time, never a valid or test target (only the impression's clicks are).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streams.data.cold import check_fraction
from streams.data.records import BadRecord, Engagement, Impression, Item, Problems, parse_id
from streams.data.split import Split, first_seen
from streams.data.tabular import iter_tsv
from streams.data.writer import Prepared, finish
from streams.errors import DataError
from streams.progress import progress

logger = logging.getLogger(__name__)

NEWS_FIELDS = ("news_id", "category", "subcategory", "title", "abstract", "url",
               "title_entities", "abstract_entities")
BEHAVIOR_FIELDS = ("impression_id", "user_id", "time", "history", "impressions")
HISTORY_STEP_S = 0.001
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


@dataclasses.dataclass
class Behavior:
    """One impression row of behaviors.tsv."""

    impression_id: str
    user_id: str
    ts: float
    history: list[str]
    shown: list[tuple[str, int]]
    split: str = "train"


def find_sets(root: Path) -> list[tuple[str, Path]]:
    """[(role, dir)]: role 'train'/'dev' for a train+dev download, 'single' otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: MIND directory not found")
    subdirs = [d for d in root.iterdir() if d.is_dir()]
    pick = {role: next((d for d in sorted(subdirs)
                        if d.name == role or d.name.lower().endswith(f"_{role}")), None)
            for role in ("train", "dev")}
    if pick["train"] and pick["dev"]:
        return [("train", pick["train"]), ("dev", pick["dev"])]
    if (root / "behaviors.tsv").is_file():
        return [("single", root)]
    raise DataError(f"{root}: no behaviors.tsv and no train/ + dev/ (or MIND*_train/ + "
                    "MIND*_dev/) subdirectories")


def parse_mind_time(text: str) -> float:
    try:
        dt = datetime.strptime(text.strip(), TIME_FORMAT)
    except ValueError:
        raise BadRecord("bad timestamp", f"time {text!r} is not like '11/15/2019 8:55:22 AM'") from None
    return dt.replace(tzinfo=timezone.utc).timestamp()


def load_news(path: Path, items: dict[str, Item], problems: Problems) -> None:
    """Add news of one news.tsv to items (the same id in train and dev is one item)."""
    for lineno, row in iter_tsv(path, problems, NEWS_FIELDS, min_fields=4):
        try:
            news_id = parse_id(row["news_id"], "news_id")
            if not row["title"].strip():
                raise BadRecord("missing field", "missing field 'title'")
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
            continue
        items.setdefault(news_id, Item(news_id, row["title"], body=row["abstract"],
                                       category=row["category"],
                                       extra={"subcategory": row["subcategory"]}))


def _shown(text: str) -> list[tuple[str, int]]:
    out = []
    for token in text.split():
        news_id, sep, label = token.rpartition("-")
        if not sep or label not in ("0", "1"):
            raise BadRecord("bad value", f"impression {token!r} is not NEWSID-0 or NEWSID-1 "
                            "(unlabelled test sets cannot be prepared)")
        out.append((news_id, int(label)))
    return out


def _behavior(row: dict[str, str], items: dict[str, Item]) -> Behavior:
    beh = Behavior(parse_id(row["impression_id"], "impression_id"),
                   parse_id(row["user_id"], "user_id"), parse_mind_time(row["time"]),
                   row["history"].split(), _shown(row["impressions"]))
    if not beh.shown:
        raise BadRecord("missing field", "missing field 'impressions'")
    for news_id in beh.history + [n for n, _ in beh.shown]:
        if news_id not in items:
            raise BadRecord("unknown item", f"news {news_id!r} is not in news.tsv")
    return beh


def load_behaviors(path: Path, items: dict[str, Item], problems: Problems) -> list[Behavior]:
    out: list[Behavior] = []
    rows = iter_tsv(path, problems, BEHAVIOR_FIELDS, min_fields=5)
    for lineno, row in progress(rows, f"read {path.parent.name}/behaviors"):
        try:
            out.append(_behavior(row, items))
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
    return out


def _assign(rows: list[Behavior], tail_split: str, before_tail: str | None, fraction: float) -> None:
    """Label the last `fraction` of rows by time tail_split, the fraction before before_tail."""
    ordered = sorted(rows, key=lambda b: b.ts)
    n = len(ordered)
    cut = n - round(n * fraction)
    for b in ordered[cut:]:
        b.split = tail_split
    if before_tail:
        for b in ordered[max(0, cut - round(n * fraction)):cut]:
            b.split = before_tail


def _events(rows: list[Behavior]) -> list[tuple[Engagement, str]]:
    """(event, split) per row, with not-yet-seen history items just before the row."""
    known: dict[str, set[str]] = {}
    out: list[tuple[Engagement, str]] = []
    for b in sorted(rows, key=lambda b: b.ts):
        seen = known.setdefault(b.user_id, set())
        new = [n for n in dict.fromkeys(b.history) if n not in seen]
        for i, news_id in enumerate(new):
            ts = b.ts - (len(new) - i) * HISTORY_STEP_S
            # history stays history: a dev user's past clicks are input at test time, not targets
            out.append((Engagement(b.user_id, news_id, ts, "click", {"history": True}), "train"))
        seen.update(new)
        for news_id, label in b.shown:
            kind = "click" if label else "impression"
            out.append((Engagement(b.user_id, news_id, b.ts, kind,
                                   {"impression_id": b.impression_id}), b.split))
            if label:
                seen.add(news_id)
    return out


def build_mind(root: Path, problems: Problems, valid_fraction: float = 0.1) -> Prepared:
    """Read news + behaviors of every set under root, map to splits; nothing written."""
    sets = find_sets(root)
    items: dict[str, Item] = {}
    for _, d in sets:
        load_news(d / "news.tsv", items, problems)
    rows: list[Behavior] = []
    for role, d in sets:
        part = load_behaviors(d / "behaviors.tsv", items, problems)
        if role == "dev":
            for b in part:
                b.split = "test"
        else:
            _assign(part, "valid" if role == "train" else "test",
                    "valid" if role == "single" else None, valid_fraction)
        rows += part
    tagged = sorted(_events(rows), key=lambda pair: pair[0].ts)  # stable: row order on ties
    ordered = [e for e, _ in tagged]
    split = Split(*([e for e, s in tagged if s == name] for name in ("train", "valid", "test")))
    seen_at = first_seen(ordered)
    start = ordered[0].ts if ordered else 0.0
    for item in items.values():
        item.ts = seen_at.get(item.item_id, start)
    imps = {name: [Impression(b.user_id, b.ts, [n for n, _ in b.shown], [lab for _, lab in b.shown])
                   for b in sorted(rows, key=lambda b: b.ts) if b.split == name]
            for name in ("valid", "test")}
    mapping = __doc__.split("Split mapping (documented in meta.json too):\n")[1].strip()
    return Prepared(source=f"mind ({Path(root)})", items=list(items.values()), engagements=ordered,
                    split=split, impressions_valid=imps["valid"], impressions_test=imps["test"],
                    seed=None, split_description=mapping,
                    specifics={"mind_sets": {role: str(d) for role, d in sets},
                               "valid_fraction": valid_fraction, "impression_rows": len(rows)})


def prepare_mind(root: Path, out_dir: Path, skip_bad: bool = False, valid_fraction: float = 0.1,
                 echo: Any = None, cold_items: float = 0.0, cold_seed: int = 0) -> dict[str, Any]:
    """Prepare a MIND download into out_dir; returns meta (cold_items > 0: a cold-item split)."""
    started = time.perf_counter()
    check_fraction(cold_items)
    problems = Problems(skip_bad)
    prep = build_mind(Path(root), problems, valid_fraction)
    return finish(out_dir, prep, problems, started, echo, cold_items, cold_seed)
