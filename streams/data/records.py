"""Validated record types of the prepared data format and the bad-input policy.

Every reader reports a bad line through `Problems`: by default it raises
`DataError` naming file, line and problem; with skip_bad it counts the line by
reason so the caller can report what was left out (nothing is dropped silently).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from model.records import ENGAGED_KINDS, KINDS, iter_jsonl
from streams.errors import DataError

logger = logging.getLogger(__name__)


class BadRecord(ValueError):
    """One record is unusable; `reason` is the short category used in skip counts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Problems:
    """Bad-input policy: raise on the first bad line, or (skip_bad) count by reason."""

    def __init__(self, skip_bad: bool = False) -> None:
        self.skip_bad = skip_bad
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def bad(self, file: str | Path, line: int | None, reason: str, detail: str) -> None:
        """Report one bad record; raises DataError unless skipping."""
        where = f"{file}:{line}" if line is not None else str(file)
        msg = f"{where}: {reason}: {detail}"
        if not self.skip_bad:
            raise DataError(msg)
        self.counts[reason] += 1
        if reason not in self.examples:
            self.examples[reason] = msg
            logger.warning("skipping bad input (first of its kind): %s", msg)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> list[str]:
        """One line per reason: count and first example."""
        return [f"skipped {n} x {reason} (e.g. {self.examples[reason]})"
                for reason, n in sorted(self.counts.items())]


@dataclasses.dataclass(slots=True)
class Item:
    """One catalog item (items.jsonl, topic `items`)."""

    item_id: str
    title: str
    body: str = ""
    category: str = ""
    ts: float = 0.0
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "body": self.body,
                "category": self.category, "ts": self.ts, **self.extra}

    def contract(self) -> dict[str, Any]:
        """The `items` topic value (docs/architecture.md, topics and contracts): no extra fields."""
        return {"item_id": self.item_id, "title": self.title, "body": self.body,
                "category": self.category, "ts": self.ts}


@dataclasses.dataclass(slots=True)
class Engagement:
    """One user-item event (engagements.jsonl and split files, topic `engagements`)."""

    user_id: str
    item_id: str
    ts: float
    kind: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def positive(self) -> bool:
        return self.kind in ENGAGED_KINDS

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "item_id": self.item_id, "ts": self.ts,
                "kind": self.kind, **self.extra}

    def contract(self) -> dict[str, Any]:
        """The `engagements` topic value (docs/architecture.md, topics and contracts): no extra fields."""
        return {"user_id": self.user_id, "item_id": self.item_id, "ts": self.ts, "kind": self.kind}


@dataclasses.dataclass(slots=True)
class Impression:
    """One evaluation impression: candidates shown at ts and which were engaged."""

    user_id: str
    ts: float
    candidates: list[str]
    labels: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "ts": self.ts,
                "candidates": self.candidates, "labels": self.labels}


# -- field parsing (raise BadRecord) ------------------------------------------------

def parse_ts(value: Any) -> float:
    """Epoch seconds from a number, a numeric string or an ISO-8601 string (naive = UTC)."""
    if isinstance(value, bool) or value is None:
        raise BadRecord("bad timestamp", f"timestamp {value!r} is not a time")
    if isinstance(value, (int, float)):
        ts = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            ts = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise BadRecord("bad timestamp", f"timestamp {value!r} is neither epoch seconds "
                                "nor ISO-8601") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ts = dt.timestamp()
    else:
        raise BadRecord("bad timestamp", f"timestamp {value!r} is not a time")
    if not math.isfinite(ts):
        raise BadRecord("bad timestamp", f"timestamp {value!r} is not finite")
    return ts


def parse_id(value: Any, name: str) -> str:
    """An id as str; ints are accepted (CSV/JSON logs often have numeric ids)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRecord("wrong type", f"field {name!r} must be a string id, got {value!r}")
    text = str(value).strip()
    if not text:
        raise BadRecord("missing field", f"field {name!r} is empty")
    return text


def parse_kind(value: Any) -> str:
    if value not in KINDS:
        raise BadRecord("bad value", f"kind {value!r} is not one of {', '.join(KINDS)}")
    return value


def parse_text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRecord("wrong type", f"field {name!r} must be a string, got {value!r}")
    return value


def require(row: dict[str, Any], name: str) -> Any:
    if name not in row or row[name] is None or row[name] == "":
        raise BadRecord("missing field", f"missing field {name!r}")
    return row[name]


# -- prepared-format readers -------------------------------------------------------

def jsonl_rows(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line of a JSON Lines file; bad lines go to `problems`."""
    try:
        yield from iter_jsonl(path, lambda lineno, detail: problems.bad(path, lineno, "malformed line", detail))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e


def item_from_json(row: dict[str, Any]) -> Item:
    known = {"item_id", "title", "body", "category", "ts"}
    return Item(item_id=parse_id(require(row, "item_id"), "item_id"),
                title=parse_text(require(row, "title"), "title"),
                body=parse_text(row.get("body"), "body"),
                category=parse_text(row.get("category"), "category"),
                ts=parse_ts(require(row, "ts")),
                extra={k: v for k, v in row.items() if k not in known})


def engagement_from_json(row: dict[str, Any]) -> Engagement:
    known = {"user_id", "item_id", "ts", "kind"}
    return Engagement(user_id=parse_id(require(row, "user_id"), "user_id"),
                      item_id=parse_id(require(row, "item_id"), "item_id"),
                      ts=parse_ts(require(row, "ts")),
                      kind=parse_kind(require(row, "kind")),
                      extra={k: v for k, v in row.items() if k not in known})


def require_known_item(record: object, known: set[str] | None) -> None:
    """Raise BadRecord when an engagement names an item outside `known` (None = no check)."""
    if known is not None and isinstance(record, Engagement) and record.item_id not in known:
        raise BadRecord("unknown item", f"item {record.item_id!r} is not in the items")
