"""UCSD Goodreads (Mengting Wan's crawl) interactions + books, JSON Lines plain or gzipped ->
prepared directory.

Rows: `goodreads_interactions_<genre>.json.gz` or `goodreads_interactions_dedup.json.gz`
(user_id, book_id, is_read, rating 0-5 with 0 = unrated, read_at, date_added, ...). A row is
read when is_read is true or it carries a rating. Read rows become `like` (rating >=
like_rating, default 4) or `view` (lower or no rating); shelved-but-not-read rows (to-read
lists: intent, not consumption) are skipped and counted, or become `view` with
shelved="view". Event time: read_at, else date_added. Then: a seeded user sample
(--max-users, taken while reading so memory holds only the kept users), the books those rows
name (items: streams.data.goodreads_books), the k-core filter (5 and 5 by default), the
MovieLens leave-one-out split and sampled impressions.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from streams.data.cold import check_fraction
from streams.data.goodreads_books import DESCRIPTION_CHARS, load_books
from streams.data.records import BadRecord, Engagement, Item, Problems, parse_id, require
from streams.data.split import (
    SPLIT_DESCRIPTION,
    ImpressionNegativeSampler,
    first_seen,
    impressions_for,
    leave_one_out,
)
from streams.data.subset import UserSample, k_core
from streams.data.tabular import iter_json_lines
from streams.data.writer import Prepared, finish
from streams.errors import DataError
from streams.progress import progress

MONTHS = {m: k for k, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                      "Sep", "Oct", "Nov", "Dec"), 1)}
TIME_EXAMPLE = "Tue Oct 17 18:17:34 -0700 2017"


@dataclasses.dataclass
class GoodreadsOptions:
    """What to read and how to shape it (docs/data-format.md, Goodreads)."""

    interactions: Path
    books: Path
    seed: int = 0
    like_rating: int = 4
    shelved: str = "skip"  # "skip" or "view"
    min_user_engagements: int = 5
    min_item_engagements: int = 5
    max_users: int | None = None
    description_chars: int = DESCRIPTION_CHARS


class Read(NamedTuple):
    """One kept interaction, compact until the filters are done."""

    ts: float
    line: int
    user: str
    book: str
    kind: str
    rating: int


def parse_goodreads_time(text: str, name: str) -> float:
    """Epoch seconds of 'Tue Oct 17 18:17:34 -0700 2017' (by hand: strptime is slow and locale-bound)."""
    try:
        _, month, day, hms, zone, year = text.split()
        hour, minute, second = (int(x) for x in hms.split(":"))
        if len(zone) != 5 or zone[0] not in "+-":
            raise ValueError(zone)
        offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (-1 if zone[0] == "-" else 1)
        local = datetime(int(year), MONTHS[month], int(day), hour, minute, second, tzinfo=timezone.utc)
    except (ValueError, KeyError):
        raise BadRecord("bad timestamp", f"{name} {text!r} is not like {TIME_EXAMPLE!r}") from None
    return local.timestamp() - offset


def _event_time(row: dict[str, Any]) -> float:
    for name in ("read_at", "date_added"):
        text = row.get(name)
        if text not in (None, ""):
            if not isinstance(text, str):
                raise BadRecord("wrong type", f"{name} must be a string, got {text!r}")
            return parse_goodreads_time(text, name)
    raise BadRecord("missing field", "no read_at and no date_added: the row has no time")


def _rating(row: dict[str, Any]) -> int:
    value = row.get("rating", 0)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError
        rating = int(value)
    except ValueError:
        raise BadRecord("wrong type", f"rating {value!r} is not a whole number") from None
    if not 0 <= rating <= 5:
        raise BadRecord("bad value", f"rating {rating} is not 0-5")
    return rating


def _is_read(row: dict[str, Any]) -> bool:
    value = require(row, "is_read")
    if value not in (True, False) or not isinstance(value, (bool, int)):
        raise BadRecord("wrong type", f"is_read {value!r} is not true or false")
    return bool(value)


def parse_interaction(row: dict[str, Any], lineno: int, opts: GoodreadsOptions) -> Read | None:
    """The row as a Read, or None for a shelved-not-read row that is skipped."""
    user = sys.intern(parse_id(require(row, "user_id"), "user_id"))
    book = sys.intern(parse_id(require(row, "book_id"), "book_id"))
    rating = _rating(row)
    if not (_is_read(row) or rating > 0):
        if opts.shelved == "skip":
            return None
        return Read(_event_time(row), lineno, user, book, "view", rating)
    kind = "like" if rating >= opts.like_rating else "view"
    return Read(_event_time(row), lineno, user, book, kind, rating)


def load_interactions(opts: GoodreadsOptions, problems: Problems) -> tuple[list[Read], Counter[str]]:
    """Kept rows in (time, line) order and counts of what was left out on the way."""
    path, sample = Path(opts.interactions), UserSample(opts.max_users, opts.seed)
    by_user: dict[str, list[Read]] = defaultdict(list)
    counts: Counter[str] = Counter()
    for lineno, row in progress(iter_json_lines(path, problems), f"read {path.name}"):
        try:
            read = parse_interaction(row, lineno, opts)
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
            continue
        counts["rows"] += 1
        if read is None:
            counts["shelved_not_read_skipped"] += 1
            continue
        kept, evicted = sample.admit(read.user)
        if evicted is not None:
            counts["rows_of_unsampled_users"] += len(by_user.pop(evicted, ()))
        if not kept:
            counts["rows_of_unsampled_users"] += 1
            continue
        by_user[read.user].append(read)
    reads = sorted((r for rows in by_user.values() for r in rows), key=lambda r: (r.ts, r.line))
    return reads, counts


def _known_books(reads: list[Read], items: dict[str, Item], path: Path,
                 problems: Problems) -> list[Read]:
    """reads whose book is in the books file; the others are reported, first line first."""
    for r in sorted((r for r in reads if r.book not in items), key=attrgetter("line")):
        problems.bad(path, r.line, "unknown item", f"book {r.book!r} is not in the books file")
    return [r for r in reads if r.book in items]


def _specifics(opts: GoodreadsOptions, counts: Counter[str], core_dropped: int) -> dict[str, Any]:
    shelved = ("skipped" if opts.shelved == "skip" else "view")
    return {"goodreads": {
        "interactions": str(opts.interactions), "books": str(opts.books),
        "kind_rule": f"read (is_read or rated): like if rating >= {opts.like_rating} else view; "
                     f"shelved-not-read: {shelved}",
        "time_rule": "read_at, else date_added",
        "min_user_engagements": opts.min_user_engagements,
        "min_item_engagements": opts.min_item_engagements, "max_users": opts.max_users,
        "description_chars": opts.description_chars,
        "counts": {**dict(counts), "rows_dropped_by_k_core": core_dropped}}}


def check_options(opts: GoodreadsOptions) -> None:
    """DataError on settings that cannot work, before any file is read."""
    checks = [(opts.shelved in ("skip", "view"), f"shelved {opts.shelved!r} is not skip or view"),
              (1 <= opts.like_rating <= 5, f"like rating {opts.like_rating} is not 1-5"),
              (opts.max_users is None or opts.max_users >= 1, f"max users {opts.max_users} < 1"),
              (min(opts.min_user_engagements, opts.min_item_engagements) >= 1, "min engagements < 1"),
              (opts.description_chars >= 20, f"description chars {opts.description_chars} < 20")]
    wrong = [why for ok, why in checks if not ok]
    if wrong:
        raise DataError("goodreads: bad setting: " + "; ".join(wrong))


def build_goodreads(opts: GoodreadsOptions, problems: Problems) -> Prepared:
    """Read, sample, filter, order, split and sample impressions; nothing written."""
    reads, counts = load_interactions(opts, problems)
    books = load_books(opts.books, {r.book for r in reads}, problems, opts.description_chars)
    reads = _known_books(reads, books, Path(opts.interactions), problems)
    core = k_core(reads, attrgetter("user"), attrgetter("book"), opts.min_user_engagements,
                  opts.min_item_engagements)
    if not core:
        raise DataError(f"{opts.interactions}: no engagement left of {len(reads):,} read rows after the "
                        f"k-core filter (users >= {opts.min_user_engagements}, books >= "
                        f"{opts.min_item_engagements} engagements): lower --min-*-engagements")
    ordered = [Engagement(r.user, r.book, r.ts, r.kind, {"rating": r.rating}) for r in core]
    seen_at = first_seen(ordered)
    items = [books[b] for b in seen_at]  # only engaged books, in order of first engagement
    for item in items:
        item.ts = seen_at[item.item_id]  # published at its first engagement (as MovieLens)
    split = leave_one_out(ordered)
    sampler = ImpressionNegativeSampler(items, ordered, opts.seed)
    return Prepared(source=f"goodreads ({opts.interactions})", items=items, engagements=ordered,
                    split=split, impressions_valid=impressions_for(split.valid, sampler, "valid"),
                    impressions_test=impressions_for(split.test, sampler, "test"),
                    seed=opts.seed, split_description=SPLIT_DESCRIPTION,
                    specifics=_specifics(opts, counts, len(reads) - len(core)))


def prepare_goodreads(opts: GoodreadsOptions, out_dir: Path, skip_bad: bool = False,
                      echo: Any = None, cold_items: float = 0.0, cold_seed: int = 0) -> dict[str, Any]:
    """Prepare Goodreads files into out_dir; returns meta (cold_items > 0: a cold-item split)."""
    started = time.perf_counter()
    check_fraction(cold_items)
    check_options(opts)
    problems = Problems(skip_bad)
    prep = build_goodreads(opts, problems)
    return finish(out_dir, prep, problems, started, echo, cold_items, cold_seed)
