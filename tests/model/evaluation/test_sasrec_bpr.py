"""The ID baselines (SASRec, BPR-MF) as rankers: they learn planted patterns that popularity
cannot, cold items are never trained on, and `threadrec evaluate` reports them."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
import torch

from model.evaluation.baselines import CoOccurrence, DecayedPopularity, Popularity
from model.evaluation.bpr import BPROptions, BPRRanker
from model.evaluation.evaluate import full_ranking_eval
from model.evaluation.sasrec_baseline import SASRecRanker
from model.ids.sasrec import SASRecOptions


def with_valid(rows: dict[str, list[str]], items: int) -> SimpleNamespace:
    """Per-user item sequences -> leave-one-out train/valid (last item = valid target)."""
    train = [{"user_id": u, "item_id": i, "ts": float(t)} for u, s in rows.items() for t, i in enumerate(s[:-1])]
    valid = [{"user_id": u, "item_id": s[-1], "ts": float(len(s))} for u, s in rows.items()]
    return SimpleNamespace(train=sorted(train, key=lambda r: r["ts"]), valid=valid,
                           items={f"i{k}": {} for k in range(items)}, cold_items=frozenset())


def chains(users: int = 120, items: int = 40, length: int = 14, seed: int = 0) -> SimpleNamespace:
    """Every user walks the catalogue in order (after item k comes k+1) from a random start:
    the next item follows from the last one, and popularity is nearly flat."""
    rng = random.Random(seed)
    starts = [rng.randrange(items) for _ in range(users)]
    return with_valid({f"u{u}": [f"i{(s + t) % items}" for t in range(length)] for u, s in enumerate(starts)}, items)


def clusters(users: int = 80, items: int = 60, per_user: int = 12, seed: int = 0) -> SimpleNamespace:
    """Users in 4 groups, each engaging only with its own quarter of the catalogue, in random order."""
    rng = random.Random(seed)
    return with_valid({f"u{u}": rng.sample([f"i{k}" for k in range(items) if k % 4 == u % 4], per_user)
                       for u in range(users)}, items)


def valid_recall(ranker, data) -> float:
    """Full-ranking Recall@10 of the valid targets from train histories, train items excluded."""
    hist: dict[str, list[dict]] = {}
    for e in data.train:
        hist.setdefault(e["user_id"], []).append(e)
    targets = {e["user_id"]: {e["item_id"]} for e in data.valid}
    return full_ranking_eval(ranker, sorted(targets), targets, hist, list(data.items))["full_recall@10"]


def train_ids(data) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in data.train:
        out.setdefault(e["user_id"], []).append(e["item_id"])
    return out


@pytest.mark.slow  # trains a model (20 epochs)
def test_sasrec_learns_planted_chains_and_beats_popularity():
    data = chains()
    opts = SASRecOptions(dim=32, max_len=10, max_epochs=20, patience=20, lr=5e-3, dropout=0.1)
    sasrec = SASRecRanker(list(data.items), train_ids(data), opts=opts).fit(data)
    facts = sasrec.facts
    assert facts["curve"][-1]["loss"] < 0.5 * facts["curve"][0]["loss"]
    assert facts["epochs"] == 20 and facts["stopped_by"] == "max_epochs" and facts["options"]["dim"] == 32
    assert facts["best_valid_recall@10"] == max(c["valid_recall@10"] for c in facts["curve"]) > 0.9
    pop = valid_recall(Popularity(list(data.items), data.train), data)
    assert valid_recall(sasrec, data) > pop + 0.5  # the kept (best) weights, scored through the ranker


@pytest.mark.slow  # trains a model (60 epochs)
def test_bpr_learns_planted_clusters_and_beats_popularity():
    data = clusters()
    opts = BPROptions(dim=16, lr=0.05, max_epochs=60, patience=60, batch_size=256)
    bpr = BPRRanker(list(data.items), opts=opts).fit(data.train, data.valid)
    curve = bpr.facts["curve"]
    assert curve[-1]["loss"] < 0.7 * curve[0]["loss"]
    assert bpr.facts["options"]["lr"] == 0.05 and bpr.facts["best_epoch"] < bpr.facts["epochs"]
    pop = valid_recall(Popularity(list(data.items), data.train), data)
    assert valid_recall(bpr, data) > pop + 0.2


@pytest.mark.slow  # trains a model until it stops
def test_early_stopping_keeps_the_best_epoch_and_obeys_the_budget():
    data = clusters(users=20)
    bpr = BPRRanker(list(data.items), opts=BPROptions(dim=4, lr=0.5, max_epochs=50, patience=2)).fit(
        data.train, data.valid)
    f = bpr.facts
    assert f["stopped_by"] == "patience" and f["epochs"] == f["best_epoch"] + 3
    assert bpr.valid_metrics([(bpr.users[e["user_id"]], bpr.index[e["item_id"]]) for e in data.valid]) == (
        f["best_valid_recall@10"], f["best_valid_ndcg@10"])
    quick = BPRRanker(list(data.items), opts=BPROptions(dim=4, max_epochs=1000, max_minutes=1e-6)).fit(
        data.train, data.valid)
    assert quick.facts["epochs"] == 1 and quick.facts["stopped_by"] == "budget"


def test_bpr_negatives_are_items_the_user_never_engaged():
    data = clusters(users=8, items=16, per_user=3)  # each user engaged 2 of the 4 items of their group
    bpr = BPRRanker(list(data.items), opts=BPROptions(dim=4, max_epochs=1)).fit(data.train, data.valid)
    users = torch.arange(len(bpr.users)).repeat_interleave(500)
    neg = bpr.negatives(users, torch.Generator().manual_seed(0))
    assert not any(int(j) in bpr.seen[int(u)] for u, j in zip(users, neg, strict=True))
    assert bpr.has_row[neg.numpy()].all()


def cold_case() -> tuple[SimpleNamespace, frozenset[str]]:
    data = chains(users=40, items=20, length=10)
    return data, frozenset({"i3", "i4"})


def test_cold_items_are_never_a_sasrec_target_input_or_row(monkeypatch):
    import model.evaluation.sasrec_baseline as sasrec_mod

    data, cold = cold_case()
    seen_targets: list[torch.Tensor] = []
    real = sasrec_mod.windows
    monkeypatch.setattr(sasrec_mod, "windows", lambda seqs, n: (seen_targets.append(real(seqs, n)[1]), real(seqs, n))[1])
    r = SASRecRanker(list(data.items), train_ids(data), cold, SASRecOptions(dim=8, max_len=6, max_epochs=2)).fit(data)
    assert not cold & set(r.model.index)  # no row: never an output, never an input (dropped from sequences)
    targets = {r.model.item_ids[k - 1] for k in torch.cat(seen_targets).unique().tolist() if k > 0}
    assert targets and not targets & cold
    assert r.model.encode([["i3", "i1", "i4"]])[0, -2:].tolist() == [0, r.model.index["i1"]]
    s = r.scores(["u0"], ["i3", "i4", "i5"])
    assert (s[0, :2] == -1e9).all() and s[0, 2] > -1e9


def test_cold_items_are_never_a_bpr_target_negative_or_factor(monkeypatch):
    data, cold = cold_case()
    trained_on: list[torch.Tensor] = []
    real = BPRRanker._epoch
    monkeypatch.setattr(BPRRanker, "_epoch", lambda self, opt, pairs, gen: (trained_on.append(pairs),
                                                                             real(self, opt, pairs, gen))[1])
    r = BPRRanker(list(data.items), cold, BPROptions(dim=4, max_epochs=2)).fit(data.train, data.valid)
    cold_cols = {r.index[i] for i in cold}
    assert trained_on and not cold_cols & set(torch.cat(trained_on)[:, 1].tolist())
    assert not r.has_row[sorted(cold_cols)].any()
    assert not cold_cols & set(r.negatives(torch.zeros(2000, dtype=torch.long), torch.Generator()).tolist())
    s = r.scores(["u0", "u1"], ["i3", "i4", "i5"])
    assert (s[:, :2] == -1e9).all() and (s[:, 2] > -1e9).all()


def test_popularity_and_cooccurrence_ignore_cold_items():
    data, cold = cold_case()
    ids = list(data.items)
    pop = Popularity(ids, data.train, cold)
    assert pop.counts[[ids.index("i3"), ids.index("i4")]].sum() == 0 and pop.counts.sum() > 0
    assert Popularity(ids, data.train).counts[ids.index("i3")] > 0  # the data does engage them
    recent = DecayedPopularity(ids, data.train, cold=cold)
    assert recent.counts_at(1e12)[[ids.index("i3"), ids.index("i4")]].sum() == 0
    co = CoOccurrence(ids, data.train, train_ids(data), cold)
    assert co.co[:, [ids.index("i3"), ids.index("i4")]].sum() == 0


def test_evaluate_baselines_never_count_cold_items(tmp_path):
    from model.dataset import load_prepared
    from model.evaluation.evaluate import build_rankers, split_history
    from streams.data.synthetic import write_prepared_dir

    data = load_prepared(write_prepared_dir(tmp_path / "d"))
    busiest = max(data.items, key=lambda i: sum(e["item_id"] == i for e in data.train))
    data.meta["cold_items"] = [busiest]
    pop, recent, co, *_ = build_rankers(data, split_history(data, "test"), False, sasrec_minutes=0, bpr_minutes=0)
    col = pop.index[busiest]
    assert pop.counts[col] == 0 and recent.counts_at(1e12)[col] == 0
    assert co.co[:, col].sum() == 0


@pytest.fixture()
def cold_dir(tmp_path):
    """A synthetic prepared dir whose meta.json holds out two users' test targets as cold items."""
    from streams.data.synthetic import write_prepared_dir

    d = write_prepared_dir(tmp_path / "d", n_users=12)
    test = [json.loads(ln) for ln in (d / "test.jsonl").read_text().splitlines()]
    meta = json.loads((d / "meta.json").read_text())
    meta["cold_items"] = sorted({test[0]["item_id"], test[1]["item_id"]})
    (d / "meta.json").write_text(json.dumps(meta))
    return d


@pytest.mark.slow  # trains both ID baselines
def test_threadrec_evaluate_trains_the_id_baselines_and_reports_the_cold_slice(cold_dir, tmp_path):
    from streams.cli import main

    out = tmp_path / "eval.json"
    assert main(["evaluate", "--data", str(cold_dir), "--no-progress", "--sasrec-minutes", "0.01",
                 "--bpr-minutes", "0.01", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"sasrec", "bpr"} <= set(res["models"]) and set(res["training"]) == {"sasrec", "bpr"}
    for name in ("sasrec", "bpr"):
        t = res["training"][name]
        assert t["epochs"] >= 1 and 0 <= t["best_epoch"] < t["epochs"] and t["seconds"] >= 0
        assert t["options"]["max_minutes"] == 0.01 and "best_valid_recall@10" in t
    assert res["cold_users"] >= 2 and set(res["cold"]) == set(res["models"])
    for name in ("sasrec", "bpr"):  # no row for a cold item: it ranks below every other candidate
        assert res["cold"][name]["full_recall@10"] == 0.0


def test_evaluate_can_skip_the_id_baselines(cold_dir):
    from model.evaluation.evaluate import evaluate

    res = evaluate(cold_dir, None, split="test", progress=False, id_baselines=False)
    assert not {"sasrec", "bpr"} & set(res["models"]) and "training" not in res
    assert {"popularity", "cooccurrence"} <= set(res["models"]) and set(res["cold"]) == set(res["models"])
    users = res["per_user_ids"]  # every model judged on the same users, in one order: pairs line up
    for name, m in res["models"].items():
        per, iv = res["per_user"][name]["full_recall@10"], res["intervals"][name]["full_recall@10"]
        assert len(per) == len(users) == iv["n"] and abs(sum(per) / len(per) - m["full_recall@10"]) < 1e-4
        assert iv["lo"] <= m["full_recall@10"] <= iv["hi"]
