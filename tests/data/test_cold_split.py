"""The cold-item split: late newcomers only, seeded, recorded in meta, files unchanged."""

from __future__ import annotations

import json

import pytest

from model.dataset import load_prepared
from streams.data.cold import choose_cold, write_cold_split
from streams.errors import DataError
from tests.fixtures.synthetic_data import write_prepared_dir


def timeline(n_items: int = 100) -> list[dict]:
    """Item k is first engaged at engagement #2k; every item engaged twice."""
    return [{"item_id": f"i{k}", "ts": float(t)} for k in range(n_items) for t in (2 * k, 2 * k + 1)]


def test_chosen_items_are_late_newcomers_and_seeded():
    rows = timeline()
    chosen, info = choose_cold(rows, 0.1, seed=0)
    assert len(chosen) == 10 == info["chosen"] and info["candidates"] == 30
    assert all(int(i[1:]) >= 70 for i in chosen)  # first engaged in the last 30% of the timeline
    assert chosen == choose_cold(rows, 0.1, seed=0)[0]
    assert chosen != choose_cold(rows, 0.1, seed=1)[0]


def test_fewer_candidates_than_wanted_takes_them_all():
    chosen, info = choose_cold(timeline(), 0.5, seed=0)
    assert len(chosen) == 30 and info["wanted"] == 50


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
