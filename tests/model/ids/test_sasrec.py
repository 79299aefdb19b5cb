"""The SASRec tower: training windows, cold items never get a row, rows are the logit rows
(the baseline as a ranker: tests/model/evaluation/test_sasrec_bpr.py)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from model.evaluation.sasrec_baseline import fit_sasrec, windows
from model.ids.sasrec import SASRec, SASRecOptions


def chains(users: int = 120, items: int = 40, length: int = 14, seed: int = 0) -> SimpleNamespace:
    """Every user walks the catalogue in order (after item k comes k+1) from a random start,
    so the next item is predictable from the last one and popularity is nearly flat."""
    rng = random.Random(seed)
    rows: list[dict] = []
    for u in range(users):
        start = rng.randrange(items)
        rows += [{"user_id": f"u{u}", "item_id": f"i{(start + t) % items}", "ts": float(t)} for t in range(length)]
    by_user: dict[str, list[dict]] = {}
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r)
    train = [r for ev in by_user.values() for r in ev[:-1]]
    valid = [ev[-1] for ev in by_user.values()]
    return SimpleNamespace(train=sorted(train, key=lambda r: r["ts"]), valid=valid,
                           items={f"i{k}": {} for k in range(items)}, cold_items=frozenset())


def test_windows_cover_long_histories_left_padded():
    x, y = windows([[1, 2, 3, 4, 5, 6, 7], [8, 9]], max_len=3)
    assert x.tolist() == [[4, 5, 6], [1, 2, 3], [0, 0, 8]]  # every transition exactly once
    assert y.tolist() == [[5, 6, 7], [2, 3, 4], [0, 0, 9]]


@pytest.mark.slow  # trains a model
def test_cold_items_get_no_row_and_are_never_targets():
    data = chains(users=30)
    cold = {"i3", "i4"}
    admitted = {r["item_id"] for r in data.train} - cold
    model = fit_sasrec(data, data.train, admitted, SASRecOptions(dim=16, max_len=8, max_epochs=2), progress=False)
    rows, present = model.item_rows(list(data.items))
    assert not present[[3, 4]].any() and present.sum() == len(data.items) - 2
    assert not rows[[3, 4]].any()
    x, y = windows([[model.index[i] for i in ["i1", "i2", "i5"] if i in model.index]], 8)
    assert set(y.flatten().tolist()) <= {0} | set(model.index.values())
    assert model.encode([["i3", "i1", "i4"]])[0, -1] == model.index["i1"]  # cold dropped from inputs


@pytest.mark.parametrize("dim", [8])
def test_item_rows_are_the_logit_rows(dim):
    model = SASRec(["a", "b"], SASRecOptions(dim=dim, max_len=4))
    rows, present = model.item_rows(["a", "b", "zzz"])
    assert present.tolist() == [True, True, False]
    assert np.allclose(rows[:2], model.items.weight.detach().numpy()[1:])
