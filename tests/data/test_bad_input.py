"""Bad input stops with file, line and problem; --skip-bad continues and counts by reason."""

from __future__ import annotations

import json

import pytest

from model.records import read_jsonl
from streams.cli import main
from streams.data.custom import prepare_custom
from streams.data.mind import prepare_mind
from streams.data.movielens import prepare_movielens
from streams.errors import DataError
from streams.kafka.replay import load_replay
from tests.data.helpers import write_jsonl, write_mind_set, write_ml

ITEMS = [{"item_id": "a", "title": "A"}, {"item_id": "b", "title": "B"}]
GOOD = [{"user_id": "u", "item_id": "a", "ts": 1, "kind": "click"},
        {"user_id": "u", "item_id": "b", "ts": 2, "kind": "view"}]


@pytest.mark.parametrize("bad_line, reason", [
    ('{"user_id": "u", "item_id": "a", "ts": 3', "malformed line"),
    ('["not", "an", "object"]', "malformed line"),
    ({"user_id": "u", "ts": 3, "kind": "click"}, "missing field: missing field 'item_id'"),
    ({"user_id": ["u"], "item_id": "a", "ts": 3}, "wrong type"),
    ({"user_id": "u", "item_id": "zzz", "ts": 3}, "unknown item: item 'zzz'"),
    ({"user_id": "u", "item_id": "a", "ts": "yesterday"}, "bad timestamp"),
    ({"user_id": "u", "item_id": "a", "ts": 3, "kind": "purchase"}, "bad value: kind 'purchase'"),
])
def test_custom_jsonl_bad_line(tmp_path, bad_line, reason):
    items = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    eng = write_jsonl(tmp_path / "eng.jsonl", [GOOD[0], bad_line, GOOD[1]])
    with pytest.raises(DataError) as err:
        prepare_custom(items, eng, tmp_path / "out")
    assert str(err.value).startswith(f"{eng}:2: ")
    assert reason in str(err.value)
    assert not (tmp_path / "out" / "meta.json").exists()

    meta = prepare_custom(items, eng, tmp_path / "out2", skip_bad=True)
    assert sum(meta["skipped_bad_input"].values()) == 1
    assert meta["skipped_bad_input"] == {reason.split(":")[0]: 1}
    assert meta["counts"]["engagements"] == 2


def test_missing_file_named(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: cannot read"):
        prepare_custom(tmp_path / "nope.jsonl", tmp_path / "e.jsonl", tmp_path / "out")
    with pytest.raises(DataError, match=r"ml-100k\.item: cannot read"):
        prepare_movielens(tmp_path / "out", source=tmp_path)


def test_csv_wrong_field_count_and_duplicate_item(tmp_path):
    (tmp_path / "i.csv").write_text("item_id,title\na,A\nb,B,extra\n")
    (tmp_path / "e.csv").write_text("user_id,item_id,ts\nu,a,1\n")
    with pytest.raises(DataError, match=r"i\.csv:3: malformed line: expected 2 fields, got 3"):
        prepare_custom(tmp_path / "i.csv", tmp_path / "e.csv", tmp_path / "o", fmt="csv")
    (tmp_path / "i.csv").write_text("item_id,title\na,A\na,B\n")
    with pytest.raises(DataError, match=r"i\.csv:3: duplicate item"):
        prepare_custom(tmp_path / "i.csv", tmp_path / "e.csv", tmp_path / "o", fmt="csv")


@pytest.mark.parametrize("line, reason", [
    ("1\t2\t3", "malformed line: expected 4 tab-separated fields, got 3"),
    ("1\t999\t3\t10", "unknown item: item '999'"),
    ("1\t2\tgood\t10", "wrong type: rating 'good'"),
    ("1\t2\t3\tnever", "bad timestamp"),
])
def test_movielens_bad_line(tmp_path, line, reason):
    src = write_ml(tmp_path / "src", extra_inter_lines=(line,))
    with pytest.raises(DataError) as err:
        prepare_movielens(tmp_path / "out", source=src)
    assert str(err.value).startswith(f"{src / 'ml-100k.inter'}:14: {reason}")
    meta = prepare_movielens(tmp_path / "out", source=src, skip_bad=True)
    assert meta["counts"]["engagements"] == 12 and sum(meta["skipped_bad_input"].values()) == 1


@pytest.mark.parametrize("row, reason", [
    (("9", "U1", "13/45/2019 8:00:00 AM", "", "N1-1"), "bad timestamp"),
    (("9", "U1", "11/14/2019 8:00:00 AM", "N404", "N1-1"), "unknown item: news 'N404'"),
    (("9", "U1", "11/14/2019 8:00:00 AM", "", "N1-2"), "bad value: impression 'N1-2'"),
    (("9", "U1", "11/14/2019 8:00:00 AM"), "malformed line"),
])
def test_mind_bad_row(tmp_path, row, reason):
    good = ("1", "U1", "11/14/2019 7:00:00 AM", "N2", "N1-1 N3-0")
    d = write_mind_set(tmp_path / "m", ["N1", "N2", "N3"], [good, row])
    with pytest.raises(DataError) as err:
        prepare_mind(d, tmp_path / "out")
    assert str(err.value).startswith(f"{d / 'behaviors.tsv'}:2: {reason}")
    meta = prepare_mind(d, tmp_path / "out", skip_bad=True)
    assert meta["impression_rows"] == 1 and sum(meta["skipped_bad_input"].values()) == 1


def test_replay_input_validated(tmp_path):
    d = tmp_path / "prep"
    write_jsonl(d / "items.jsonl", [{**i, "ts": 0} for i in ITEMS])
    write_jsonl(d / "engagements.jsonl", [*GOOD, {"user_id": "u", "item_id": "x", "ts": 5,
                                                 "kind": "click"}])
    with pytest.raises(DataError, match=r"engagements\.jsonl:3: unknown item"):
        load_replay(d)


def test_cli_one_line_and_skip_bad_report(tmp_path, capsys):
    items = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    eng = write_jsonl(tmp_path / "eng.jsonl", [GOOD[0], "{oops", GOOD[1], {"user_id": "u"}])
    args = ["data", "prepare", "jsonl", "--items", str(items), "--engagements", str(eng)]
    assert main([*args, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{eng}:2: malformed line" in err
    assert main([*args, "--out", str(tmp_path / "o"), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 x malformed line" in out and "skipped 1 x missing field" in out
    assert len(read_jsonl(tmp_path / "o" / "engagements.jsonl")) == 2
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["skipped_bad_input"] == {"malformed line": 1, "missing field": 1}
