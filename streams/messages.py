"""Parse and validate raw topic records (DESIGN.md contracts); build dead-letter records.

Every rejection carries a short reason ("malformed JSON", "missing field", "wrong type",
"bad kind", "unknown item") plus detail, which the dead-letter record's `error` holds.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

logger = logging.getLogger(__name__)

KINDS = ("click", "view", "like", "share", "impression")


class InvalidMessage(ValueError):
    """A record that breaks its topic's contract; str() is 'reason: detail'."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _load(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise InvalidMessage("malformed JSON", "null value")
    try:
        obj = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidMessage("malformed JSON", str(e)) from e
    if not isinstance(obj, dict):
        raise InvalidMessage("wrong type", f"value must be a JSON object, got {type(obj).__name__}")
    return obj


def _text(obj: dict, name: str, required: bool = True) -> str | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise InvalidMessage("missing field", f"{name!r} is required")
        return None
    if not isinstance(v, str) or (required and not v.strip()):
        raise InvalidMessage("wrong type", f"{name!r} must be a non-empty string, got {v!r}")
    return v


def _ts(obj: dict) -> float:
    v = obj.get("ts")
    if v is None:
        raise InvalidMessage("missing field", "'ts' is required")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidMessage("wrong type", f"'ts' must be epoch seconds (a number), got {v!r}")
    return float(v)


def parse_item(value: bytes | None) -> dict[str, Any]:
    """An `items` value -> {item_id, title, body, category, ts}; raises InvalidMessage."""
    obj = _load(value)
    item = {"item_id": _text(obj, "item_id"), "title": _text(obj, "title"),
            "body": _text(obj, "body", False) or "", "category": _text(obj, "category", False) or "",
            "ts": _ts(obj)}
    return item


def parse_engagement(value: bytes | None) -> dict[str, Any]:
    """An `engagements` value -> {user_id, item_id, ts, kind}; raises InvalidMessage."""
    obj = _load(value)
    event = {"user_id": _text(obj, "user_id"), "item_id": _text(obj, "item_id"), "ts": _ts(obj),
             "kind": _text(obj, "kind")}
    if event["kind"] not in KINDS:
        raise InvalidMessage("bad kind", f"kind {event['kind']!r} not in {', '.join(KINDS)}")
    return event


def tombstone_id(key: bytes | None) -> str:
    """The item id a null `items` value removes (its key)."""
    if not key:
        raise InvalidMessage("missing field", "a tombstone needs the item id as its key")
    return key.decode("utf-8", errors="replace")


def source_ref(topic: str, partition: int, offset: int, ts: float | None) -> dict[str, Any]:
    """The `source` of a recommendation: where the engagement came from."""
    return {"topic": topic, "partition": partition, "offset": offset, "ts": ts}


def deadletter_record(source_topic: str, partition: int, offset: int, key: bytes | None,
                      payload: bytes | None, error: str) -> dict[str, Any]:
    """The `deadletter` value: the original record (as text) and why it was rejected."""
    def text(b: bytes | None) -> str | None:
        return None if b is None else b.decode("utf-8", errors="replace")

    return {"source_topic": source_topic, "partition": partition, "offset": offset,
            "key": text(key), "payload": text(payload), "error": error}


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON for outgoing records."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
