"""Message validation gives a clear reason per rejection; dead-letter records keep the original."""

from __future__ import annotations

import json

import pytest

from streams.messages import (
    InvalidMessage,
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
])
def test_bad_engagements_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidMessage) as info:
        parse_engagement(raw)
    assert info.value.reason == reason and str(info.value).startswith(reason)


def test_tombstone_needs_a_key():
    assert tombstone_id(b"i9") == "i9"
    with pytest.raises(InvalidMessage):
        tombstone_id(None)


def test_deadletter_record_follows_the_contract():
    rec = deadletter_record("p-engagements", 2, 41, b"u1", b"{bad", "malformed JSON: x")
    assert rec == {"source_topic": "p-engagements", "partition": 2, "offset": 41, "key": "u1",
                   "payload": "{bad", "error": "malformed JSON: x"}
