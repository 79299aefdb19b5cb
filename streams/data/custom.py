"""Users' own logs (JSON Lines or CSV) -> prepared directory, with configurable column names."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.data.cold import check_fraction
from streams.data.records import (
    BadRecord,
    Engagement,
    Item,
    Problems,
    jsonl_rows,
    parse_id,
    parse_kind,
    parse_text,
    parse_ts,
    require,
)
from streams.data.split import (
    SPLIT_DESCRIPTION,
    ImpressionNegativeSampler,
    first_seen,
    impressions_for,
    leave_one_out,
    order_by_time,
)
from streams.data.tabular import iter_csv
from streams.data.writer import Prepared, finish
from streams.progress import progress

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Columns:
    """Where each field lives in the user's files (defaults = the prepared format's names)."""

    item_id: str = "item_id"
    user_id: str = "user_id"
    ts: str = "ts"
    kind: str = "kind"
    title: str = "title"
    body: str = "body"
    category: str = "category"
    item_ts: str = "ts"
    default_kind: str = "click"  # used when an engagement has no kind column/value


def _rows(path: Path, fmt: str, problems: Problems, delimiter: str) -> Iterator[tuple[int, dict]]:
    if fmt == "jsonl":
        return jsonl_rows(path, problems)
    return iter_csv(path, problems, delimiter)


def _item(row: dict[str, Any], cols: Columns) -> Item:
    mapped = {cols.item_id, cols.title, cols.body, cols.category, cols.item_ts}
    raw_ts = row.get(cols.item_ts)
    return Item(item_id=parse_id(require(row, cols.item_id), cols.item_id),
                title=parse_text(require(row, cols.title), cols.title),
                body=parse_text(row.get(cols.body), cols.body),
                category=parse_text(row.get(cols.category), cols.category),
                ts=parse_ts(raw_ts) if raw_ts not in (None, "") else float("nan"),
                extra={k: v for k, v in row.items() if k not in mapped})


def _engagement(row: dict[str, Any], cols: Columns, items: dict[str, Item]) -> Engagement:
    mapped = {cols.user_id, cols.item_id, cols.ts, cols.kind}
    item_id = parse_id(require(row, cols.item_id), cols.item_id)
    if item_id not in items:
        raise BadRecord("unknown item", f"item {item_id!r} is not in the items file")
    kind = row.get(cols.kind)
    return Engagement(user_id=parse_id(require(row, cols.user_id), cols.user_id), item_id=item_id,
                      ts=parse_ts(require(row, cols.ts)),
                      kind=parse_kind(kind if kind not in (None, "") else cols.default_kind),
                      extra={k: v for k, v in row.items() if k not in mapped})


def load_items(path: Path, fmt: str, cols: Columns, problems: Problems,
               delimiter: str = ",") -> dict[str, Item]:
    items: dict[str, Item] = {}
    for lineno, row in _rows(path, fmt, problems, delimiter):
        try:
            item = _item(row, cols)
            if item.item_id in items:
                raise BadRecord("duplicate item", f"item {item.item_id!r} appears twice")
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
            continue
        items[item.item_id] = item
    return items


def load_engagements(path: Path, fmt: str, cols: Columns, items: dict[str, Item],
                     problems: Problems, delimiter: str = ",") -> list[Engagement]:
    out: list[Engagement] = []
    rows = _rows(path, fmt, problems, delimiter)
    for lineno, row in progress(rows, f"read {path.name}"):
        try:
            out.append(_engagement(row, cols, items))
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
    return out


def _settle_item_times(items: dict[str, Item], ordered: list[Engagement]) -> int:
    """Missing item ts = first engagement; an item is never published after its first use.

    Returns how many given times were moved earlier (reported in meta.json).
    """
    seen_at = first_seen(ordered)
    start = ordered[0].ts if ordered else 0.0
    moved = 0
    for item in items.values():
        first = seen_at.get(item.item_id)
        if item.ts != item.ts:  # NaN: no time given
            item.ts = first if first is not None else start
        elif first is not None and first < item.ts:
            item.ts, moved = first, moved + 1
    return moved


def build_custom(items_path: Path, engagements_path: Path, fmt: str, cols: Columns, seed: int,
                 problems: Problems, delimiter: str = ",") -> Prepared:
    """Read, order, split and sample a user's own logs; nothing written."""
    items = load_items(Path(items_path), fmt, cols, problems, delimiter)
    ordered = order_by_time(load_engagements(Path(engagements_path), fmt, cols, items,
                                             problems, delimiter))
    moved = _settle_item_times(items, ordered)
    split = leave_one_out(ordered)
    sampler = ImpressionNegativeSampler(items.values(), ordered, seed)
    return Prepared(source=f"{fmt} ({items_path}, {engagements_path})", items=list(items.values()),
                    engagements=ordered, split=split,
                    impressions_valid=impressions_for(split.valid, sampler, "valid"),
                    impressions_test=impressions_for(split.test, sampler, "test"),
                    seed=seed, split_description=SPLIT_DESCRIPTION,
                    specifics={"columns": dataclasses.asdict(cols), "item_ts_moved_earlier": moved})


def prepare_custom(items_path: Path, engagements_path: Path, out_dir: Path, fmt: str = "jsonl",
                   cols: Columns | None = None, seed: int = 0, skip_bad: bool = False,
                   delimiter: str = ",", echo: Any = None, cold_items: float = 0.0,
                   cold_seed: int = 0) -> dict[str, Any]:
    """Prepare custom jsonl/csv logs into out_dir; returns meta (cold_items > 0: a cold-item split)."""
    started = time.perf_counter()
    check_fraction(cold_items)
    problems = Problems(skip_bad)
    prep = build_custom(items_path, engagements_path, fmt, cols or Columns(), seed, problems,
                        delimiter)
    return finish(out_dir, prep, problems, started, echo, cold_items, cold_seed)
