"""The hybrid score: the gate's exactness for items without an ID row, and the gate fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.ids.hybrid import Fusion, HybridConfig
from model.training.hybrid_fit import (
    FusionData,
    fit_fusion,
    recall_at,
    rowless_share,
    split_held_in,
    tune_gate,
    tune_prior,
    valid_positions,
)


def _fusion(k: int = 8, seed: int = 0) -> Fusion:
    torch.manual_seed(seed)
    f = Fusion(k)
    with torch.no_grad():  # a trained-looking gate, not the zero init
        f.gate.weight.normal_()
        f.gate.bias.fill_(0.3)
        f.log_scale.fill_(0.7)
    return f


@pytest.mark.parametrize("prior", [-1.0, 0.9])
def test_item_without_row_scores_exactly_as_content(prior):
    f = _fusion()
    f.prior_q.fill_(prior)
    content = torch.randn(5, 40)
    users, rows = torch.randn(5, 8), torch.randn(40, 8)
    present = torch.rand(40) > 0.5
    with torch.no_grad():
        ref = f.reference(users, rows[present])
        s = f(content, users, rows, present, ref)
    assert torch.equal(s[:, ~present], content[:, ~present])  # bit for bit, with or without a prior
    assert not torch.allclose(s[:, present], content[:, present])  # the ID term does something
    if prior >= 0:  # present items are shifted by the user's 90th percentile of their ID terms
        with torch.no_grad():
            terms = (users @ rows[present].T) * f.gates(rows[present])
        k = round(0.9 * (int(present.sum()) - 1))
        np.testing.assert_allclose(ref[:, 0].numpy(), np.sort(terms.numpy(), axis=1)[:, k], rtol=1e-6)


def test_absent_row_mask_per_position_and_zero_rows():
    f = _fusion()
    content, users = torch.randn(3, 6), torch.randn(3, 8)
    rows = torch.randn(6, 8)
    present = torch.ones(3, 6, dtype=torch.bool)
    present[1, 2] = False
    with torch.no_grad():
        s = f(content, users, rows, present)
    assert s[1, 2] == content[1, 2]
    assert s[0, 2] != content[0, 2]


def test_split_held_in_cuts_last_positions_and_skips_cold_targets():
    ev = {"u": [{"user_id": "u", "item_id": f"i{t}", "ts": float(t)} for t in range(6)],
          "short": [{"user_id": "short", "item_id": "i0", "ts": 0.5}]}
    fit, held = split_held_in(ev, positions=2, cold=frozenset({"i5"}))
    assert [e["item_id"] for e in fit if e["user_id"] == "u"] == ["i0", "i1", "i2", "i3"]
    assert [(h.key, h.target, len(h.history)) for h in held] == [("u@4", "i4", 4)]
    assert any(e["user_id"] == "short" for e in fit)  # too short to cut: all of it trains the tower


def _planted(n_pos: int = 300, n_items: int = 50, k: int = 8, seed: int = 1) -> FusionData:
    """Content is noise; the ID term (users aligned with their target's row) carries the signal."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(n_items, k, generator=g)
    targets = torch.randint(0, n_items, (n_pos,), generator=g)
    users = rows[targets] + 0.5 * torch.randn(n_pos, k, generator=g)
    return FusionData(torch.randn(n_pos, n_items, generator=g), users, rows,
                      torch.ones(n_items, dtype=torch.bool), targets,
                      torch.zeros(n_pos, n_items, dtype=torch.bool))


@pytest.mark.slow  # trains the gate (80 epochs)
def test_fit_fusion_learns_to_trust_informative_rows():
    data = _planted()
    fusion, losses = fit_fusion(data, HybridConfig(fusion_epochs=80, row_dropout=0.0))
    assert losses[-1] < 0.6 * losses[0]
    with torch.no_grad():
        s = fusion(data.content, data.users, data.rows, data.present)
    hit = (s.argmax(1) == data.targets).float().mean()
    content_hit = (data.content.argmax(1) == data.targets).float().mean()
    assert hit > 0.5 > content_hit + 0.3


def test_fit_fusion_is_deterministic():
    data = _planted()
    a, la = fit_fusion(data, HybridConfig(fusion_epochs=10))
    b, lb = fit_fusion(data, HybridConfig(fusion_epochs=10))
    assert la == lb
    assert np.array_equal(a.gate.weight.detach().numpy(), b.gate.weight.detach().numpy())


@pytest.mark.slow  # trains a model
def test_hybrid_checkpoint_round_trip_and_evaluate(tmp_path):
    from model.config import tiny_t5_config
    from model.dataset import load_prepared
    from model.evaluation.evaluate import evaluate
    from model.ids.sasrec import SASRecOptions
    from model.training.hybrid_train import is_hybrid, train_hybrid
    from model.training.train import TrainOptions, train
    from streams.data.synthetic import write_prepared_dir
    from tests.model.conftest import small_config

    data_dir = write_prepared_dir(tmp_path / "data", n_users=12, per_user=12)
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    train(data_dir, tmp_path / "content", cfg, TrainOptions(steps=1, batch_size=2, eval_every=0, eval_users=3),
          progress=False)
    data = load_prepared(data_dir)
    facts = train_hybrid(data, tmp_path / "content", tmp_path / "hyb",
                         HybridConfig(fusion_positions=2, fusion_epochs=5),
                         SASRecOptions(dim=8, max_len=8, max_epochs=3), progress=False)
    assert is_hybrid(tmp_path / "hyb") and not is_hybrid(tmp_path / "content")
    assert facts["held_in_positions"] > 0 and facts["id_rows"] > 0
    prior = facts["prior"]  # the kept prior is within one fit position of the best expected recall
    top = max(c["expected"] for c in prior["curve"].values())
    assert prior["curve"][prior["kept"]]["expected"] > top - 1 / facts["held_in_positions"]
    from model.checkpoint import load_hybrid
    from model.training.hybrid_train import retune_prior

    again = retune_prior(data, tmp_path / "hyb", progress=False)  # deterministic: the same choice
    assert again["kept"] == facts["prior"]["kept"] and again["curve"] == facts["prior"]["curve"]
    assert load_hybrid(tmp_path / "hyb")[1]["facts"]["prior"] == again
    res = evaluate(data_dir, tmp_path / "hyb", split="test", progress=False, baselines=False)
    assert set(res["models"]) == {"embsum", "hybrid"}
    assert all(0 <= m["full_recall@10"] <= 1 for m in res["models"].values())


def test_hybrid_ranker_scores_rowless_items_exactly_as_content(tmp_path):
    from model.evaluation.evaluate import HybridRanker
    from model.ids.sasrec import SASRec, SASRecOptions

    class Content:
        item_ids = ["a", "b", "c"]

        def scores(self, users, items):
            return np.arange(len(users) * len(items), dtype=np.float32).reshape(len(users), len(items))

    tower = SASRec(["a", "b"], SASRecOptions(dim=4, max_len=3))  # "c" has no ID row
    rows, present = tower.item_rows(Content.item_ids)
    fusion = _fusion(4)
    tensors = {**{f"tower.{k}": v for k, v in tower.state_dict().items()},
               **{f"fusion.{k}": v for k, v in fusion.state_dict().items()},
               "id_rows": torch.from_numpy(rows)}
    doc = {"tower": tower.options_dict(), "item_ids": Content.item_ids, "present": ["a", "b"]}
    from model.ids.hybrid import HybridConfig
    from model.ids.id_checkpoint import IdCheckpoint

    ck = IdCheckpoint(tower, fusion, HybridConfig(), tensors, doc)
    ranker = HybridRanker(Content(), ck, {"u": [{"item_id": "a"}, {"item_id": "b"}]})
    s = ranker.scores(["u", "v"], ["c", "a", "b"])
    c = Content().scores(["u", "v"], ["c", "a", "b"])
    assert np.array_equal(s[:, 0], c[:, 0])
    assert not np.allclose(s[0, 1:], c[0, 1:])


def test_tune_gate_keeps_the_weighting_with_the_best_recall():
    data = _planted()
    fusion = Fusion(data.rows.shape[1])  # zero init: a gate of 1/2, far too weak for these rows
    with torch.no_grad():
        before = recall_at(fusion(data.content, data.users, data.rows, data.present), data)
    curve = tune_gate(fusion, data)
    with torch.no_grad():
        after = recall_at(fusion(data.content, data.users, data.rows, data.present), data)
    assert after == max(curve.values()) >= before
    assert len(curve) == 14 and set(curve) >= {"fitted x1", "flat x32"}


def test_valid_positions_fit_where_models_are_selected():
    train = {"a": [{"user_id": "a", "item_id": "1", "ts": 1.0}], "b": []}
    valid = [{"user_id": "a", "item_id": "2", "ts": 2.0}, {"user_id": "a", "item_id": "c", "ts": 3.0},
             {"user_id": "b", "item_id": "2", "ts": 2.0}, {"user_id": "z", "item_id": "2", "ts": 2.0}]
    held = valid_positions(train, valid, frozenset({"c"}))
    assert [(h.key, h.target, len(h.history)) for h in held] == [("a@valid", "2", 1)]


def _content_led(n_pos: int = 300, n_items: int = 50, k: int = 8, seed: int = 2) -> FusionData:
    """The target leads on content; the ID rows are noise that a strong gate lets speak."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, n_items, (n_pos,), generator=g)
    content = torch.randn(n_pos, n_items, generator=g)
    content[torch.arange(n_pos), targets] += 3.0
    return FusionData(content, torch.randn(n_pos, k, generator=g), torch.randn(n_items, k, generator=g),
                      torch.ones(n_items, dtype=torch.bool), targets, torch.zeros(n_pos, n_items, dtype=torch.bool))


def test_tune_prior_helps_rowless_targets_only_when_the_stream_has_them():
    data = _content_led()
    fusion = _fusion()
    curve = tune_prior(fusion, data, rowless=0.0)
    assert len({round(c["warm"], 6) for c in curve.values()}) == 1  # every row present: a per-user shift
    kept = "q" + format(float(fusion.prior_q), "g")  # costs warm nothing, so rowless targets decide
    assert curve[kept]["hidden"] == max(c["hidden"] for c in curve.values()) > curve["off"]["hidden"]
    data.present[::2] = False  # now a high prior lifts rowless non-targets over warm targets
    curve = tune_prior(fusion, data, rowless=0.0)
    kept = "off" if float(fusion.prior_q) < 0 else "q" + format(float(fusion.prior_q), "g")
    top = max(c["expected"] for c in curve.values())
    assert curve[kept]["expected"] > top - 1 / len(data.targets)  # within one position of the best
    assert min(c["warm"] for c in curve.values()) < top - 1 / len(data.targets)  # and some were not
    near = [c for c in curve.values() if c["expected"] > top - 1 / len(data.targets)]
    assert curve[kept]["hidden"] == max(c["hidden"] for c in near)
    curve = tune_prior(fusion, data, rowless=1.0)
    assert float(fusion.prior_q) > 0.5
    kept = "q" + format(float(fusion.prior_q), "g")
    assert curve[kept]["hidden"] == max(c["hidden"] for c in curve.values()) > curve["off"]["hidden"]
    assert rowless_share([{"item_id": "a"}, {"item_id": "z"}], {"a"}) == 0.5 and rowless_share([], set()) == 0.0
