"""MovieLens loader: ordering, kinds, items, leave-one-out split and sampled impressions."""

from __future__ import annotations

import importlib.util
import json

import pytest

from model.records import read_jsonl
from streams.cli import main
from streams.data.movielens import ensure_movielens, prepare_movielens
from tests.data.helpers import write_ml


@pytest.fixture
def prepared(tmp_path):
    out = tmp_path / "out"
    prepare_movielens(out, source=write_ml(tmp_path / "src"), seed=0)
    return out


def test_engagements_in_time_order_with_stable_ties(prepared):
    rows = read_jsonl(prepared / "engagements.jsonl")
    got = [(r["user_id"], r["item_id"], r["ts"]) for r in rows]
    assert got == [("3", "5", 50), ("3", "6", 60), ("3", "7", 60), ("3", "8", 70), ("1", "1", 100),
                   ("2", "2", 100), ("2", "3", 150), ("1", "2", 200), ("2", "1", 300),
                   ("2", "4", 400), ("1", "3", 500), ("1", "4", 500)]
    assert all(isinstance(r["ts"], float) for r in rows)


def test_kind_from_rating_and_rating_kept(prepared):
    rows = {(r["user_id"], r["item_id"]): r for r in read_jsonl(prepared / "engagements.jsonl")}
    assert rows[("1", "1")]["kind"] == "like" and rows[("1", "1")]["rating"] == 5
    assert rows[("1", "2")]["kind"] == "like"  # rating 4 is the threshold
    assert rows[("2", "3")]["kind"] == "view" and rows[("2", "3")]["rating"] == 2


def test_items_title_year_genres_and_first_seen_ts(prepared):
    items = {r["item_id"]: r for r in read_jsonl(prepared / "items.jsonl")}
    assert len(items) == 10
    assert items["1"]["title"] == "Toy Story (1995)"
    assert items["1"]["category"] == "Animation"
    assert items["1"]["body"] == "Animation, Children's, Comedy"
    assert items["6"]["title"] == "Mystery Film"  # non-numeric year is left out
    assert items["4"]["ts"] == 400.0  # first rating
    assert items["9"]["ts"] == 50.0  # never rated: there from the start


def test_leave_one_out_split(prepared):
    split = {name: read_jsonl(prepared / f"{name}.jsonl") for name in ("train", "valid", "test")}
    pairs = {name: [(r["user_id"], r["item_id"]) for r in rows] for name, rows in split.items()}
    # user 1's last two share ts 500: the later source row (item 4) is the test one
    assert sorted(pairs["test"]) == [("1", "4"), ("2", "4"), ("3", "8")]
    assert sorted(pairs["valid"]) == [("1", "3"), ("2", "1"), ("3", "7")]
    assert len(pairs["train"]) == 6
    assert not set(pairs["test"]) & set(pairs["train"])
    for rows in split.values():
        assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_impressions_one_positive_and_unseen_published_negatives(prepared):
    items = {r["item_id"]: r["ts"] for r in read_jsonl(prepared / "items.jsonl")}
    eng = read_jsonl(prepared / "engagements.jsonl")
    for name in ("valid", "test"):
        positives = {(r["user_id"], r["item_id"]) for r in read_jsonl(prepared / f"{name}.jsonl")}
        imps = read_jsonl(prepared / f"impressions_{name}.jsonl")
        assert len(imps) == 3
        for imp in imps:
            assert sum(imp["labels"]) == 1 and len(imp["labels"]) == len(imp["candidates"])
            pos = imp["candidates"][imp["labels"].index(1)]
            assert (imp["user_id"], pos) in positives
            seen = {r["item_id"] for r in eng if r["user_id"] == imp["user_id"] and r["ts"] <= imp["ts"]}
            negs = [c for c, lab in zip(imp["candidates"], imp["labels"], strict=True) if not lab]
            assert len(set(negs)) == len(negs) and not set(negs) & seen
            assert all(items[n] <= imp["ts"] for n in negs)
    by_user = {i["user_id"]: i for i in read_jsonl(prepared / "impressions_test.jsonl")}
    assert len(by_user["1"]["candidates"]) == 5
    # user 3 at ts 60 has only items 9 and 10 published and unseen
    valid3 = next(i for i in read_jsonl(prepared / "impressions_valid.jsonl") if i["user_id"] == "3")
    assert sorted(c for c, lab in zip(valid3["candidates"], valid3["labels"], strict=True)
                  if not lab) == ["10", "9"]


def test_same_seed_same_impressions(tmp_path, prepared):
    again = tmp_path / "again"
    prepare_movielens(again, source=tmp_path / "src", seed=0)
    for name in ("impressions_valid.jsonl", "impressions_test.jsonl", "engagements.jsonl"):
        assert (again / name).read_text() == (prepared / name).read_text()
    meta = json.loads((prepared / "meta.json").read_text())
    assert meta["counts"] == {"items": 10, "engagements": 12, "users": 3}
    assert meta["seed"] == 0 and "leave-one-out" in meta["split"]


def test_ensure_movielens_prepares_only_once(tmp_path):
    src, out = write_ml(tmp_path / "src"), tmp_path / "out"
    assert ensure_movielens(out, source=src) == out
    (out / "train.jsonl").unlink()
    ensure_movielens(out, source=src)
    assert not (out / "train.jsonl").exists()  # meta.json present: left alone
    (out / "meta.json").unlink()
    ensure_movielens(out, source=src)
    assert (out / "train.jsonl").exists()


def test_cli_prepare_movielens(tmp_path, capsys):
    src = write_ml(tmp_path / "src")
    rc = main(["data", "prepare", "movielens", "--source", str(src), "--out", str(tmp_path / "o"),
               "--seed", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "engagements 12" in out and "users 3" in out
    assert json.loads((tmp_path / "o" / "meta.json").read_text())["seed"] == 3


@pytest.mark.slow  # prepares all 100k engagements; the small files above run in the unit loop
@pytest.mark.skipif(importlib.util.find_spec("recbole") is None, reason="recbole wheel not installed")
def test_real_movielens_100k(tmp_path):
    meta = prepare_movielens(tmp_path / "ml")
    assert meta["counts"] == {"items": 1682, "engagements": 100_000, "users": 943}
    assert meta["split_counts"]["test"] == 943 and meta["split_counts"]["valid"] == 943
    assert meta["split_counts"]["train"] == 100_000 - 2 * 943
    assert meta["split_counts"]["impressions_test"] == 943
    rows = read_jsonl(tmp_path / "ml" / "engagements.jsonl")
    assert len(rows) == 100_000
    assert all(a["ts"] <= b["ts"] for a, b in zip(rows, rows[1:], strict=False))
    imps = read_jsonl(tmp_path / "ml" / "impressions_test.jsonl")
    assert all(len(i["candidates"]) == 5 and sum(i["labels"]) == 1 for i in imps)
