"""MIND loader: clicks, impression events, history, split mapping, impressions kept."""

from __future__ import annotations

import json

import pytest

from model.dataset import histories, load_prepared
from model.records import read_jsonl
from streams.cli import main
from streams.data.mind import find_sets, prepare_mind
from streams.errors import DataError
from tests.data.helpers import write_mind_set

NEWS = [f"N{i}" for i in range(1, 10)]
TRAIN = [  # impression_id, user, time, history, impressions
    ("1", "U1", "11/14/2019 8:55:22 AM", "N1 N2", "N3-1 N4-0"),
    ("2", "U2", "11/14/2019 9:00:00 AM", "N5", "N3-0 N6-1 N7-0"),
    ("3", "U1", "11/14/2019 1:00:00 PM", "N1 N2 N8", "N5-1 N6-0"),
    ("4", "U2", "11/14/2019 2:00:00 PM", "N5", "N9-1 N1-0"),
]
DEV = [("1", "U1", "11/15/2019 10:00:00 AM", "N1 N2", "N4-1 N9-0 N7-1")]


@pytest.fixture
def mind_dir(tmp_path):
    write_mind_set(tmp_path / "mind" / "MINDsmall_train", NEWS, TRAIN)
    write_mind_set(tmp_path / "mind" / "MINDsmall_dev", NEWS[:], DEV)
    return tmp_path / "mind"


def test_events_from_train_and_dev(mind_dir, tmp_path):
    meta = prepare_mind(mind_dir, tmp_path / "out", valid_fraction=0.25)
    eng = read_jsonl(tmp_path / "out" / "engagements.jsonl")
    assert [e["ts"] for e in eng] == sorted(e["ts"] for e in eng)
    u1 = [(e["item_id"], e["kind"]) for e in eng if e["user_id"] == "U1"]
    assert u1 == [("N1", "click"), ("N2", "click"), ("N3", "click"), ("N4", "impression"),
                  ("N8", "click"),  # only the history item not seen before, just before row 3
                  ("N5", "click"), ("N6", "impression"),
                  ("N4", "click"), ("N9", "impression"), ("N7", "click")]
    first = [e for e in eng if e["user_id"] == "U1"][:3]
    t0 = first[2]["ts"]
    assert first[0]["history"] and t0 - 0.0021 < first[0]["ts"] < first[1]["ts"] < t0
    assert t0 == 1573721722.0  # 11/14/2019 8:55:22 AM UTC
    assert meta["counts"] == {"items": 9, "engagements": len(eng), "users": 2}


def test_split_mapping_and_impressions(mind_dir, tmp_path):
    prepare_mind(mind_dir, tmp_path / "out", valid_fraction=0.25)
    out = tmp_path / "out"
    test_imps = read_jsonl(out / "impressions_test.jsonl")
    assert test_imps == [{"user_id": "U1", "ts": 1573812000.0, "candidates": ["N4", "N9", "N7"],
                          "labels": [1, 0, 1]}]
    valid_imps = read_jsonl(out / "impressions_valid.jsonl")  # last 25% of train rows = row 4
    assert [(i["user_id"], i["candidates"]) for i in valid_imps] == [("U2", ["N9", "N1"])]
    assert {e["impression_id"] for e in read_jsonl(out / "valid.jsonl")} == {"4"}
    train_ids = {e.get("impression_id") for e in read_jsonl(out / "train.jsonl")}
    assert train_ids == {"1", "2", "3", None}
    assert len(read_jsonl(out / "test.jsonl")) == 3


def test_single_directory_and_cli(tmp_path, capsys):
    write_mind_set(tmp_path / "one", NEWS, TRAIN)
    assert find_sets(tmp_path / "one") == [("single", tmp_path / "one")]
    rc = main(["data", "prepare", "mind", "--from", str(tmp_path / "one"), "--out",
               str(tmp_path / "o"), "--valid-fraction", "0.25"])
    assert rc == 0 and "users 2" in capsys.readouterr().out
    assert len(read_jsonl(tmp_path / "o" / "impressions_test.jsonl")) == 1
    assert len(read_jsonl(tmp_path / "o" / "impressions_valid.jsonl")) == 1
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["mind_sets"] == {"single": str(tmp_path / "one")}


def test_train_dev_subdir_names(tmp_path):
    write_mind_set(tmp_path / "m" / "train", NEWS, TRAIN)
    write_mind_set(tmp_path / "m" / "dev", NEWS, DEV)
    assert [r for r, _ in find_sets(tmp_path / "m")] == ["train", "dev"]
    with pytest.raises(DataError, match="no behaviors.tsv"):
        find_sets(tmp_path)


def test_history_of_a_user_first_seen_in_dev_stays_history(tmp_path):
    dev = [("1", "U9", "11/15/2019 10:00:00 AM", "N1 N2 N5", "N4-1 N9-0 N3-1"),
           ("2", "U1", "11/15/2019 11:00:00 AM", "N1 N2 N6", "N7-1 N8-0")]  # N6: shown, never clicked
    late = ("5", "U3", "11/14/2019 3:00:00 PM", "N2 N8", "N1-1 N4-0")  # the valid row (last 1 of 5)
    write_mind_set(tmp_path / "mind" / "train", NEWS, [*TRAIN, late])
    write_mind_set(tmp_path / "mind" / "dev", NEWS, dev)
    prepare_mind(tmp_path / "mind", tmp_path / "out", valid_fraction=0.2)
    data = load_prepared(tmp_path / "out")
    seen_at_test = histories(data.train + data.valid)  # what evaluation reads at test time
    assert [e["item_id"] for e in seen_at_test["U9"]] == ["N1", "N2", "N5"]  # the history column
    assert "N6" in [e["item_id"] for e in seen_at_test["U1"]]
    test_rows = read_jsonl(tmp_path / "out" / "test.jsonl")
    assert not [e for e in test_rows if e.get("history")]  # no history-column item is a target
    clicked = {("U9", "N4"), ("U9", "N3"), ("U1", "N7")}
    assert {(e["user_id"], e["item_id"]) for e in data.test} == clicked  # the clicks are
    assert {(e["user_id"], e["item_id"]) for e in test_rows if e["kind"] == "impression"} == {
        ("U9", "N9"), ("U1", "N8")}
    # the same rule for train-set impressions in valid: their history stays in train
    assert not [e for e in read_jsonl(tmp_path / "out" / "valid.jsonl") if e.get("history")]
    assert [(e["user_id"], e["item_id"]) for e in data.valid] == [("U3", "N1")]
    assert [e["item_id"] for e in histories(data.train)["U3"]] == ["N2", "N8"]
