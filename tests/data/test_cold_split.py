"""The cold-item split: late newcomers only, seeded, recorded in meta, files unchanged; also
added by `data prepare --cold-items` on every loader."""

from __future__ import annotations

import json

import pytest

from model.dataset import load_prepared
from model.records import read_jsonl
from streams.cli import main
from streams.data.cold import choose_cold, write_cold_split
from streams.data.custom import prepare_custom
from streams.data.movielens import prepare_movielens
from streams.data.synthetic import write_prepared_dir
from streams.errors import DataError
from tests.data.helpers import write_jsonl, write_ml


def timeline(n_items: int = 100) -> list[str]:
    """Item k is first engaged at engagement #2k; every item engaged twice."""
    return [f"i{k}" for k in range(n_items) for _ in range(2)]


def test_chosen_items_are_late_newcomers_and_seeded():
    order = timeline()
    chosen, info = choose_cold(order, 0.1, seed=0)
    assert len(chosen) == 10 == info["chosen"] and info["candidates"] == 30
    assert all(int(i[1:]) >= 70 for i in chosen)  # first engaged in the last 30% of the timeline
    assert chosen == sorted(chosen) == choose_cold(order, 0.1, seed=0)[0]
    assert chosen != choose_cold(order, 0.1, seed=1)[0]
    assert "note" not in info and {"fraction", "seed", "candidates", "chosen", "rule"} <= set(info)


def test_fewer_candidates_than_wanted_takes_them_all_and_says_so():
    chosen, info = choose_cold(timeline(), 0.5, seed=0)
    assert len(chosen) == 30 and info["wanted"] == 50 and "only 30 candidates" in info["note"]


def test_bad_fraction_is_refused():
    with pytest.raises(DataError, match="fraction"):
        choose_cold(timeline(), 1.5, seed=0)


def test_write_cold_split_copies_and_records(tmp_path):
    src = write_prepared_dir(tmp_path / "src")
    assert load_prepared(src).cold_items == frozenset()  # off by default
    meta = write_cold_split(src, tmp_path / "cold", 0.2, seed=3)
    data = load_prepared(tmp_path / "cold")
    assert data.cold_items == frozenset(meta["cold_items"]) and data.cold_items
    assert (tmp_path / "cold" / "train.jsonl").read_text() == (src / "train.jsonl").read_text()
    assert json.loads((tmp_path / "cold" / "meta.json").read_text())["cold_split"]["seed"] == 3


def late_log(tmp_path, n_users: int = 40, n_items: int = 60):
    """Items a user engages with in turn; item k first appears at ts k, so the late ones are
    known; each user's last engagement (the test target) is a late item."""
    items = write_jsonl(tmp_path / "items.jsonl", [{"item_id": f"i{k}", "title": f"T{k}"}
                                                    for k in range(n_items)])
    rows = [{"user_id": f"u{u}", "item_id": f"i{k}", "ts": k + u / 100, "kind": "click"}
            for u in range(n_users) for k in range(n_items) if (k + u) % 3 == 0 or k == u % n_items]
    return items, write_jsonl(tmp_path / "eng.jsonl", rows)


def test_prepare_with_cold_items(tmp_path):
    items, eng = late_log(tmp_path)
    meta = prepare_custom(items, eng, tmp_path / "out", cold_items=0.1, cold_seed=5)
    order = [e["item_id"] for e in read_jsonl(tmp_path / "out" / "engagements.jsonl")]
    first = {i: order.index(i) for i in set(order)}
    cut = int(len(order) * 0.7)
    info, cold = meta["cold_split"], meta["cold_items"]
    assert len(cold) == info["chosen"] == round(0.1 * len(first)) and cold == sorted(cold)
    assert all(first[i] >= cut for i in cold)  # only late newcomers
    assert info["candidates"] == sum(k >= cut for k in first.values())
    test = read_jsonl(tmp_path / "out" / "test.jsonl")
    assert info["test_users_with_cold_target"] == len({e["user_id"] for e in test if e["item_id"] in cold})
    assert load_prepared(tmp_path / "out").cold_items == frozenset(cold)
    again = prepare_custom(items, eng, tmp_path / "again", cold_items=0.1, cold_seed=5)
    other = prepare_custom(items, eng, tmp_path / "other", cold_items=0.1, cold_seed=6)
    assert again["cold_items"] == cold != other["cold_items"]
    # the split files keep every row: consumers filter targets with PreparedData.cold_items
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == read_jsonl(tmp_path / "other" / "train.jsonl")


def test_cold_split_off_by_default_and_cli_flags(tmp_path, capsys):
    src = write_ml(tmp_path / "src")
    meta = prepare_movielens(tmp_path / "plain", source=src)
    assert "cold_items" not in meta and "cold_split" not in meta
    args = ["data", "prepare", "movielens", "--source", str(src), "--out", str(tmp_path / "c")]
    assert main([*args, "--cold-items", "0.2", "--cold-seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "cold items 1 of 1 late candidates (wanted 2); test users with a cold target" in out
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert meta["cold_split"]["seed"] == 1 and len(meta["cold_items"]) == 1 and meta["cold_split"]["note"]
    with pytest.raises(SystemExit):
        main([*args, "--cold-items", "1.5"])
    assert "not in [0, 1)" in capsys.readouterr().err
