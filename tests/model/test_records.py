"""The shared JSON Lines reader and writer of the prepared format."""

from __future__ import annotations

import pytest

from model.errors import DataDirError
from model.records import ENGAGED_KINDS, KINDS, BadLine, iter_jsonl, read_jsonl, write_jsonl


def test_every_kind_but_impression_is_an_engagement_and_the_parser_agrees():
    """An impression is shown, not engaged; the engagement parser takes exactly KINDS."""
    from streams.kafka.messages import InvalidMessage, MessageLimits, parse_engagement

    assert set(KINDS) - ENGAGED_KINDS == {"impression"}
    for kind in (*KINDS, "purchase"):
        raw = ('{"user_id":"u","item_id":"i","ts":1000.0,"kind":"' + kind + '"}').encode()
        if kind in KINDS:
            assert parse_engagement(raw, MessageLimits())["kind"] == kind
        else:
            with pytest.raises(InvalidMessage):
                parse_engagement(raw, MessageLimits())


def test_write_then_read_round_trip(tmp_path):
    rows = [{"item_id": "a", "title": "Zürich"}, {"item_id": "b", "title": ""}]
    write_jsonl(tmp_path / "items.jsonl", rows)
    assert read_jsonl(tmp_path / "items.jsonl") == rows
    assert not (tmp_path / "items.jsonl.tmp").exists()


def test_bad_lines_go_to_on_bad_or_raise(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n[1, 2]\n{"a": 2}\n', encoding="utf-8")
    bad = []
    rows = list(iter_jsonl(path, lambda n, detail: bad.append((n, detail))))
    assert rows == [(1, {"a": 1}), (5, {"a": 2})]
    assert [n for n, _ in bad] == [3, 4] and bad[1][1] == "expected a JSON object"
    with pytest.raises(BadLine) as e:
        list(iter_jsonl(path))
    assert e.value.lineno == 3 and e.value.detail.startswith("invalid JSON")
    with pytest.raises(DataDirError, match=r"x\.jsonl:3: invalid JSON"):
        read_jsonl(path)
    with pytest.raises(DataDirError, match="missing file"):
        read_jsonl(tmp_path / "nope.jsonl")
