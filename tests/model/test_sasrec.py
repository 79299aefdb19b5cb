"""SASRec learns a planted sequential pattern; cold items never get a row; the hybrid end to end."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from model.baselines import Popularity
from model.sasrec import SASRec, SASRecOptions, fit_sasrec, windows


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


def test_sasrec_learns_a_planted_sequence_and_beats_popularity():
    data = chains()
    opts = SASRecOptions(dim=32, max_len=10, max_epochs=40, patience=40, lr=5e-3, dropout=0.1)
    model = fit_sasrec(data, data.train, {r["item_id"] for r in data.train}, opts, progress=False)
    curve = model.facts["curve"]
    assert curve[-1]["loss"] < 0.5 * curve[0]["loss"]
    assert model.facts["best_valid_recall@10"] > 0.9
    pop = Popularity(list(data.items), data.train)
    hist = {}
    for r in data.train:
        hist.setdefault(r["user_id"], []).append(r["item_id"])
    users = sorted(hist)
    s = pop.scores(users, list(data.items))
    pop_hits = np.mean([f"i{int(np.argsort(-s[k])[0])}" == data.valid[k]["item_id"] for k in range(len(users))])
    assert pop_hits < 0.2


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


def clusters(users: int = 80, items: int = 60, per_user: int = 12, seed: int = 0) -> SimpleNamespace:
    """Users in 4 groups, each engaging only with its own quarter of the catalogue."""
    rng = random.Random(seed)
    train, valid = [], []
    for u in range(users):
        own = [f"i{k}" for k in range(items) if k % 4 == u % 4]
        picks = rng.sample(own, per_user)
        train += [{"user_id": f"u{u}", "item_id": i, "ts": float(t)} for t, i in enumerate(picks[:-1])]
        valid.append({"user_id": f"u{u}", "item_id": picks[-1], "ts": float(per_user)})
    return SimpleNamespace(train=train, valid=valid, items={f"i{k}": {} for k in range(items)})


def test_bpr_learns_planted_clusters_and_beats_popularity():
    from model.bpr import BPROptions, BPRRanker

    data = clusters()
    r = BPRRanker(list(data.items), data.train, data.valid, opts=BPROptions(dim=16, lr=0.05, max_epochs=60,
                                                                            patience=60, batch_size=256))
    curve = r.facts["curve"]
    assert curve[-1]["loss"] < 0.7 * curve[0]["loss"]
    pop = Popularity(list(data.items), data.train)
    users = [e["user_id"] for e in data.valid]
    seen = {u: {e["item_id"] for e in data.train if e["user_id"] == u} for u in users}

    def recall(s):
        return np.mean([e["item_id"] in [list(data.items)[k] for k in np.argsort(-s[n]) if list(data.items)[k]
                                         not in seen[e["user_id"]]][:10] for n, e in enumerate(data.valid)])
    assert recall(r.scores(users, list(data.items))) > recall(pop.scores(users, list(data.items))) + 0.2


def test_cold_items_are_never_trained_or_counted():
    from model.bpr import BPROptions, BPRRanker

    data = clusters(users=20)
    cold = frozenset({"i0", "i1"})
    r = BPRRanker(list(data.items), data.train, data.valid, cold, BPROptions(dim=4, max_epochs=2))
    s = r.scores(["u0", "u1"], ["i0", "i1", "i2"])
    assert (s[:, :2] == -1e9).all() and (s[:, 2] > -1e9).all()



def test_evaluate_baselines_never_count_cold_items(tmp_path):
    from model.dataset import load_prepared
    from model.evaluate import build_rankers, split_history
    from tests.fixtures.synthetic_data import write_prepared_dir

    data = load_prepared(write_prepared_dir(tmp_path / "d"))
    busiest = max(data.items, key=lambda i: sum(e["item_id"] == i for e in data.train))
    data.meta["cold_items"] = [busiest]
    pop, recent, co, *_ = build_rankers(data, split_history(data, "test"), False, sasrec_minutes=0, bpr_minutes=0)
    col = pop.index[busiest]
    assert pop.counts[col] == 0 and recent.counts_at(1e12)[col] == 0
    assert co.co[:, col].sum() == 0
