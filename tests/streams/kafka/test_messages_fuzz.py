"""The parsers under hostile input: whatever the bytes, parse_* returns a record that meets
the contract or raises InvalidMessage; no other exception, ever (one would stop a worker)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.kafka.messages import (
    InvalidMessage,
    MessageLimits,
    check_item_key,
    check_key,
    parse_engagement,
    parse_item,
)
from tests.fixtures.examples import examples

LIMITS = MessageLimits()
FIELDS = ("user_id", "item_id", "ts", "kind", "title", "body", "category")

scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=40),  # includes lone surrogates
    st.sampled_from(["click", "view", "like", "share", "impression", "i1", "u1"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
records = st.dictionaries(st.sampled_from(FIELDS), values, max_size=7)


def _json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=True).encode()  # lone surrogates survive as \\ud800


def _raw_variants(draw_bytes: bytes) -> list[bytes]:
    return [draw_bytes, b"{" + draw_bytes + b"}", b'{"ts":' + draw_bytes + b"}"]


def _check_engagement(raw: bytes, key: bytes | None = None) -> None:
    try:
        e = parse_engagement(raw, LIMITS)
    except InvalidMessage as err:
        assert err.reason and len(str(err)) < 2_000
        return
    assert set(e) == {"user_id", "item_id", "ts", "kind"}
    e["user_id"].encode("utf-8"), e["item_id"].encode("utf-8")  # valid text, or parse refused it
    assert isinstance(e["ts"], float) and e["ts"] > 0
    try:
        check_key(e, key)
    except InvalidMessage:
        pass


def _check_item(raw: bytes, key: bytes | None = None) -> None:
    try:
        it = parse_item(raw, LIMITS)
        check_item_key(it, key)
    except InvalidMessage:
        return
    for name in ("item_id", "title", "body", "category"):
        it[name].encode("utf-8")


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.one_of(st.none(), st.binary(max_size=12)))
def test_random_json_objects_parse_or_are_rejected(obj, key):
    _check_engagement(_json(obj), key)
    _check_item(_json(obj), key)


@settings(max_examples=examples(1500), deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_are_rejected(data):
    for raw in _raw_variants(data):
        _check_engagement(raw)
        _check_item(raw)


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(min_value=1, max_value=6000), st.sampled_from(["[", "{\"a\":", "[{\"b\":"]))
def test_deep_nesting_and_huge_numbers_are_rejected(n, opener):
    closer = {"[": "]", "{\"a\":": "}", "[{\"b\":": "}]"}[opener]
    deep = (opener * n + "1" + closer * n).encode()
    _check_engagement(deep)
    huge = f'{{"user_id":"u","item_id":"i","ts":{"9" * n},"kind":"click"}}'.encode()
    _check_engagement(huge)
    _check_item(f'{{"item_id":"i","title":"t","ts":-{"9" * n}}}'.encode(), b"i")


def test_the_five_messages_of_the_reliability_review_are_rejected():
    base = '{"user_id":%s,"item_id":"i1","ts":%s,"kind":"click"}'
    cases = {
        base % ('"u"', "1" * 400): "wrong type",
        base % ('"u"', "1" * 5000): "wrong type",
        ("[" * 3000 + "]" * 3000): "malformed JSON",
        base % ('"\\ud800"', "5"): "bad text",
    }
    for raw, reason in cases.items():
        try:
            parse_engagement(raw.encode(), LIMITS)
        except InvalidMessage as err:
            assert err.reason == reason, raw[:40]
        else:
            raise AssertionError(f"accepted {raw[:40]!r}")
    item = b'{"item_id":"i9","title":"\\udc00","ts":1}'
    try:
        parse_item(item, LIMITS)
    except InvalidMessage as err:
        assert err.reason == "bad text"
    else:
        raise AssertionError("accepted a lone surrogate title")


def test_only_utf8_is_json_here():
    good = {"user_id": "u", "item_id": "i", "ts": 5, "kind": "click"}
    assert parse_engagement(json.dumps(good).encode("utf-8"))["user_id"] == "u"
    for enc in ("utf-16", "utf-16-le", "utf-32"):
        try:
            parse_engagement(json.dumps(good).encode(enc))
        except InvalidMessage as err:
            assert err.reason == "malformed JSON"
        else:
            raise AssertionError(f"accepted {enc}")
