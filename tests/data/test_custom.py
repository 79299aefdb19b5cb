"""Custom jsonl/csv logs: configurable columns, timestamps, default kind, split."""

from __future__ import annotations

from model.records import read_jsonl
from streams.cli import main
from streams.data.custom import Columns, prepare_custom
from tests.data.helpers import write_jsonl


def test_jsonl_with_renamed_columns(tmp_path):
    items = write_jsonl(tmp_path / "items.jsonl", [
        {"id": 1, "name": "Alpha", "text": "a body", "section": "s1"},
        {"id": 2, "name": "Beta"}, {"id": 3, "name": "Gamma", "published": 5},
        {"id": 4, "name": "Delta"}, {"id": 5, "name": "Eps"}, {"id": 6, "name": "Zeta"}])
    eng = write_jsonl(tmp_path / "eng.jsonl", [
        {"who": "u1", "id": 1, "when": "1970-01-01T00:00:10Z", "action": "like", "score": 9},
        {"who": "u1", "id": 2, "when": 20},
        {"who": "u1", "id": 3, "when": "30", "action": "share"},
        {"who": "u2", "id": 3, "when": 3.5}])
    cols = Columns(item_id="id", user_id="who", ts="when", kind="action", title="name",
                   body="text", category="section", item_ts="published")
    meta = prepare_custom(items, eng, tmp_path / "out", fmt="jsonl", cols=cols, seed=1)
    out = read_jsonl(tmp_path / "out" / "engagements.jsonl")
    assert [(e["user_id"], e["item_id"], e["ts"], e["kind"]) for e in out] == [
        ("u2", "3", 3.5, "click"), ("u1", "1", 10.0, "like"), ("u1", "2", 20.0, "click"),
        ("u1", "3", 30.0, "share")]
    assert out[1]["score"] == 9  # extra fields kept
    got_items = {i["item_id"]: i for i in read_jsonl(tmp_path / "out" / "items.jsonl")}
    assert got_items["1"]["body"] == "a body" and got_items["1"]["category"] == "s1"
    assert got_items["3"]["ts"] == 3.5  # given 5, but used at 3.5: moved earlier
    assert meta["item_ts_moved_earlier"] == 1
    assert [(e["user_id"], e["item_id"]) for e in read_jsonl(tmp_path / "out" / "test.jsonl")] == [
        ("u2", "3"), ("u1", "3")]
    assert [e["item_id"] for e in read_jsonl(tmp_path / "out" / "train.jsonl")] == ["1"]
    imp = read_jsonl(tmp_path / "out" / "impressions_test.jsonl")
    assert all(sum(i["labels"]) == 1 for i in imp)


def test_csv_via_cli(tmp_path, capsys):
    (tmp_path / "items.csv").write_text('item,title,ts\nA,"Hello, world",0\nB,Two,0\nC,Three,0\n')
    (tmp_path / "eng.csv").write_text("user,item,t\nx,A,1\nx,B,2\nx,C,3\ny,C,1\n")
    rc = main(["data", "prepare", "csv", "--items", str(tmp_path / "items.csv"),
               "--engagements", str(tmp_path / "eng.csv"), "--out", str(tmp_path / "o"),
               "--item-id-col", "item", "--user-id-col", "user", "--ts-col", "t",
               "--default-kind", "view"])
    assert rc == 0 and "engagements 4" in capsys.readouterr().out
    items = read_jsonl(tmp_path / "o" / "items.jsonl")
    assert items[0]["title"] == "Hello, world"
    eng = read_jsonl(tmp_path / "o" / "engagements.jsonl")
    assert {e["kind"] for e in eng} == {"view"}
    assert [e["item_id"] for e in read_jsonl(tmp_path / "o" / "valid.jsonl")] == ["B"]
