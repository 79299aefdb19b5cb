"""Message validation gives a clear reason per rejection; dead-letter records keep the original."""

from __future__ import annotations

import hashlib
import json

import pytest

from streams.kafka.messages import (
    InvalidMessage,
    MessageLimits,
    check_key,
    deadletter_record,
    parse_engagement,
    parse_item,
    tombstone_id,
)

GOOD = {"user_id": "u1", "item_id": "i1", "ts": 1.5, "kind": "click"}


def _enc(obj) -> bytes:
    return json.dumps(obj).encode()


def test_valid_engagement_and_item_parse():
    assert parse_engagement(_enc(GOOD)) == GOOD
    item = parse_item(_enc({"item_id": "i1", "title": "T", "ts": 3}))
    assert item == {"item_id": "i1", "title": "T", "body": "", "category": "", "ts": 3.0}


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "malformed JSON"),
    (b"\xff\xfe", "malformed JSON"),
    (b"[1, 2]", "wrong type"),
    (_enc({k: v for k, v in GOOD.items() if k != "item_id"}), "missing field"),
    (_enc({**GOOD, "ts": "yesterday"}), "wrong type"),
    (_enc({**GOOD, "ts": True}), "wrong type"),
    (_enc({**GOOD, "user_id": 7}), "wrong type"),
    (_enc({**GOOD, "kind": "purchase"}), "bad kind"),
    (_enc({**GOOD, "ts": -5}), "bad ts"),
    (_enc({**GOOD, "ts": 0}), "bad ts"),
    (_enc({**GOOD, "user_id": "u" * 257}), "oversize field"),
    (_enc({**GOOD, "item_id": "é" * 129}), "oversize field"),  # bytes, not characters
    (_enc({**GOOD, "pad": "x" * 70_000}), "oversize payload"),
    (b"x" * 2_000_000, "oversize payload"),  # never parsed
])
def test_bad_engagements_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidMessage) as info:
        parse_engagement(raw)
    assert info.value.reason == reason and str(info.value).startswith(reason)
    assert len(str(info.value)) < 200  # the reason never carries the bad value whole


def test_engagement_key_must_be_its_user_id():
    check_key(GOOD, b"u1")
    for key in (b"u2", None):
        with pytest.raises(InvalidMessage, match="key mismatch"):
            check_key(GOOD, key)


def test_limits_come_from_configuration(monkeypatch):
    monkeypatch.setenv("THREADREC_LIMIT_ID_BYTES", "8")
    with pytest.raises(InvalidMessage, match="oversize field"):
        parse_engagement(_enc({**GOOD, "user_id": "u" * 9}), limits=MessageLimits())
    assert parse_engagement(_enc({**GOOD, "user_id": "u" * 9}), limits=MessageLimits(id_bytes=9))


def test_items_are_bounded_too():
    with pytest.raises(InvalidMessage, match="oversize field"):
        parse_item(_enc({"item_id": "i1", "title": "T", "body": "b" * 20_000, "ts": 3}))
    with pytest.raises(InvalidMessage, match="oversize payload"):
        parse_item(_enc({"item_id": "i1", "title": "T", "body": "b" * 2_000_000, "ts": 3}))
    assert parse_item(_enc({"item_id": "i1", "title": "T", "ts": 0}))["ts"] == 0.0


def test_tombstone_needs_a_key():
    assert tombstone_id(b"i9") == "i9"
    with pytest.raises(InvalidMessage):
        tombstone_id(None)


def test_deadletter_record_follows_the_contract():
    rec = deadletter_record("p-engagements", 2, 41, b"u1", b"{bad", "malformed JSON: x")
    assert rec == {"source_topic": "p-engagements", "partition": 2, "offset": 41, "key": "u1",
                   "payload": "{bad", "error": "malformed JSON: x", "payload_bytes": 4,
                   "payload_sha256": hashlib.sha256(b"{bad").hexdigest(), "truncated": False}


def test_deadletter_record_is_bounded_whatever_it_carries():
    big = b"k" * 700_000
    rec = deadletter_record("p-engagements", 0, 1, big, b"\xff" + b"y" * 3_000_000, "e" * 5000)
    assert len(json.dumps(rec)) < 16_384
    assert rec["payload_bytes"] == 3_000_001 and rec["truncated"] is True
    assert len(rec["key"]) == 256 and len(rec["error"]) == 1024
