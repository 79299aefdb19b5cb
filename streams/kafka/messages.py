"""Parse and validate raw topic records (the README's contracts); build dead-letter records.

Every rejection carries a short reason ("oversize payload", "malformed JSON", "missing field",
"wrong type", "oversize field", "bad text", "bad ts", "key mismatch", "bad kind", "unknown item",
"bad item vector")
plus detail, which the dead-letter record's `error` holds. Every size is bounded by
MessageLimits, so nothing the worker writes can exceed the producer's request size.

The parser closes whole classes of input rather than listed cases: the payload must be UTF-8
(no other encoding JSON allows), nesting is bounded before the decoder recurses, an integer
literal longer than MAX_INT_DIGITS is refused before int() converts it, and text fields must
encode back to UTF-8 (a lone surrogate escape such as "\\ud800" is valid JSON but not text).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.records import KINDS
from store import ItemVector, StateCodecError, VectorBounds, decode_item_vector

logger = logging.getLogger(__name__)


class MessageLimits(BaseSettings):
    """Size bounds for what the worker reads and writes (env THREADREC_LIMIT_*)."""

    model_config = SettingsConfigDict(env_prefix="THREADREC_LIMIT_", extra="ignore")

    payload_bytes: int = Field(65_536, ge=256)  # one engagement or item value
    id_bytes: int = Field(256, ge=8)  # user_id, item_id (UTF-8)
    text_bytes: int = Field(16_384, ge=64)  # title, body, category each
    # the producer's max request size: an output above it is dead-lettered, never sent
    message_bytes: int = Field(1_000_000, ge=16_384)
    deadletter_payload_bytes: int = Field(4_096, ge=64)  # a dead letter keeps this much payload
    send_attempts: int = Field(3, ge=1)  # per output record before it is dead-lettered
    json_depth: int = Field(16, ge=2)  # nesting of arrays/objects in one value


MAX_INT_DIGITS = 20  # an integer literal longer than this is refused before int() sees it
REASON_BYTES = 512  # an unexpected exception's message is cut to this in a dead letter
_STRING = re.compile(r'"(?:\\.|[^"\\])*"', re.S)  # a JSON string literal (escapes included)
_BRACKET = re.compile(r"[\[\]{}]")


class InvalidMessage(ValueError):
    """A record that breaks its topic's contract; str() is 'reason: detail'."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def reason_of(exc: BaseException) -> str:
    """A dead letter's reason for an exception nobody expected: 'unexpected error: Type: msg',
    cut to a bounded size and safe to encode (the message may quote the bad input)."""
    if isinstance(exc, InvalidMessage):
        return str(exc)
    msg = f"unexpected error: {type(exc).__name__}: {exc}"
    return msg.encode("utf-8", "backslashreplace")[:REASON_BYTES].decode("utf-8", "ignore")


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_INT_DIGITS:
        raise InvalidMessage("wrong type", f"an integer literal of {len(literal)} digits")
    return int(literal)


def _depth(text: str) -> int:
    """Deepest nesting of arrays/objects, string literals ignored (brackets in text count not)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _load(value: bytes | None, limits: MessageLimits) -> dict[str, Any]:
    if value is None:
        raise InvalidMessage("malformed JSON", "null value")
    if len(value) > limits.payload_bytes:
        raise InvalidMessage("oversize payload", f"{len(value)} bytes > {limits.payload_bytes}")
    try:
        text = bytes(value).decode("utf-8")  # json.loads(bytes) would also take UTF-16/32
    except UnicodeDecodeError as e:
        raise InvalidMessage("malformed JSON", f"not UTF-8: {e}") from e
    if _depth(text) > limits.json_depth:
        raise InvalidMessage("malformed JSON", f"nested deeper than {limits.json_depth}")
    try:
        obj = json.loads(text, parse_int=_bounded_int)
    except (json.JSONDecodeError, RecursionError) as e:
        raise InvalidMessage("malformed JSON", str(e)[:200]) from e
    if not isinstance(obj, dict):
        raise InvalidMessage("wrong type", f"value must be a JSON object, got {type(obj).__name__}")
    return obj


def _text(obj: dict, name: str, limit: int, required: bool = True) -> str | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise InvalidMessage("missing field", f"{name!r} is required")
        return None
    if not isinstance(v, str) or (required and not v.strip()):
        raise InvalidMessage("wrong type", f"{name!r} must be a non-empty string, got {_short(v)}")
    try:
        size = len(v.encode("utf-8"))
    except UnicodeEncodeError as e:  # a lone surrogate: valid JSON, not text
        raise InvalidMessage("bad text", f"{name!r} is not valid Unicode ({e.reason} at {e.start})") from e
    if size > limit:
        raise InvalidMessage("oversize field", f"{name!r} has {size} bytes > {limit}")
    return v


def _short(v: Any) -> str:
    """repr of a bad value, cut so an error string stays small."""
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _ts(obj: dict, positive: bool) -> float:
    v = obj.get("ts")
    if v is None:
        raise InvalidMessage("missing field", "'ts' is required")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidMessage("wrong type", f"'ts' must be epoch seconds (a number), got {_short(v)}")
    if v < 0 or (positive and v == 0):
        need = "positive" if positive else "non-negative"
        raise InvalidMessage("bad ts", f"'ts' must be {need} epoch seconds, got {v!r}")
    return float(v)


def parse_item(value: bytes | None, limits: MessageLimits | None = None) -> dict[str, Any]:
    """An `items` value -> {item_id, title, body, category, ts}; raises InvalidMessage."""
    lim = limits or MessageLimits()
    obj = _load(value, lim)
    return {"item_id": _text(obj, "item_id", lim.id_bytes), "title": _text(obj, "title", lim.text_bytes),
            "body": _text(obj, "body", lim.text_bytes, False) or "",
            "category": _text(obj, "category", lim.text_bytes, False) or "",
            "ts": _ts(obj, positive=False)}  # a catalogue entry may carry no real time


def parse_engagement(value: bytes | None, limits: MessageLimits | None = None) -> dict[str, Any]:
    """An `engagements` value -> {user_id, item_id, ts, kind}; raises InvalidMessage."""
    lim = limits or MessageLimits()
    obj = _load(value, lim)
    event = {"user_id": _text(obj, "user_id", lim.id_bytes), "item_id": _text(obj, "item_id", lim.id_bytes),
             "ts": _ts(obj, positive=True), "kind": _text(obj, "kind", 16)}
    if event["kind"] not in KINDS:
        raise InvalidMessage("bad kind", f"kind {event['kind']!r} not in {', '.join(KINDS)}")
    return event


def check_key(event: dict[str, Any], key: bytes | None) -> None:
    """The record key must be the user_id: one user's events must share a partition (and its
    state), so a keyless or mis-keyed engagement is refused rather than split a user."""
    if key is None:
        raise InvalidMessage("key mismatch", "the record has no key; key engagements by user_id")
    if key != event["user_id"].encode("utf-8"):
        raise InvalidMessage("key mismatch", f"record key {_short(bounded(key, 64))} is not the user_id")


def check_item_key(item: dict[str, Any], key: bytes | None) -> None:
    """An item's record key must be its item_id, or the tombstone its producer later sends
    for that key would remove nothing."""
    if key != item["item_id"].encode("utf-8"):
        what = "no key" if key is None else f"record key {_short(bounded(key, 64))}"
        raise InvalidMessage("key mismatch", f"{what} is not the item_id; key items by item_id")


def tombstone_id(key: bytes | None, limits: MessageLimits | None = None) -> str:
    """The item id a null `items` value removes (its key)."""
    if not key:
        raise InvalidMessage("missing field", "a tombstone needs the item id as its key")
    if len(key) > (limits or MessageLimits()).id_bytes:
        raise InvalidMessage("oversize field", f"tombstone key has {len(key)} bytes")
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidMessage("bad text", f"tombstone key is not UTF-8: {e}") from e


def vector_bounds(limits: MessageLimits | None = None) -> VectorBounds:
    """What an item vector may hold: the item's id and text as `items` bounds them."""
    lim = limits or MessageLimits()
    # title, category and body, each within text_bytes, joined by item_text's separators
    return VectorBounds(id_bytes=lim.id_bytes, text_bytes=3 * lim.text_bytes + 64)


def read_item_vector(key: bytes | None, value: bytes, limits: MessageLimits | None = None) -> ItemVector:
    """An `item-vectors` value decoded and bounded, keyed by its item_id; raises InvalidMessage."""
    lim = limits or MessageLimits()
    if len(value) > lim.message_bytes:
        raise InvalidMessage("oversize payload", f"{len(value)} bytes > {lim.message_bytes}")
    try:
        vec = decode_item_vector(value, vector_bounds(lim))
    except StateCodecError as e:
        raise InvalidMessage("bad item vector", str(e)) from e
    if key != vec.item.item_id.encode("utf-8"):
        what = "no key" if key is None else f"record key {_short(bounded(key, 64))}"
        raise InvalidMessage("key mismatch", f"{what} is not the vector's item_id")
    return vec


def bounded(b: bytes | None, limit: int) -> bytes | None:
    """`b` cut to at most `limit` bytes (None stays None)."""
    return None if b is None else b[:limit]


def source_ref(topic: str, partition: int, offset: int, ts: float | None) -> dict[str, Any]:
    """The `source` of a recommendation: where the engagement came from."""
    return {"topic": topic, "partition": partition, "offset": offset, "ts": ts}


def deadletter_record(source_topic: str, partition: int, offset: int, key: bytes | None,
                      payload: bytes | None, error: str,
                      limits: MessageLimits | None = None) -> dict[str, Any]:
    """The `deadletter` value: the original record (as text, cut to a bounded size, with its
    full size and SHA-256 so it can be matched) and why it was rejected."""
    lim = limits or MessageLimits()

    def text(b: bytes | None, limit: int) -> str | None:
        return None if b is None else b[:limit].decode("utf-8", errors="replace")

    rec = {"source_topic": source_topic, "partition": partition, "offset": offset,
           "key": text(key, lim.id_bytes), "payload": text(payload, lim.deadletter_payload_bytes),
           "error": error[:1024]}
    if payload is not None:
        rec["payload_bytes"] = len(payload)
        rec["payload_sha256"] = hashlib.sha256(payload).hexdigest()
        rec["truncated"] = len(payload) > lim.deadletter_payload_bytes
    return rec


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON for outgoing records."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
