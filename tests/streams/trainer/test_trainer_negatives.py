"""The sampled loss's candidates: bounded whatever the catalogue, in-batch positives of the
block plus its shared uniform draws, log-Q corrected as stated, the same after a restore; the
full softmax stays selectable."""

from __future__ import annotations

import numpy as np
import pytest

from model.ids.online import uniform_draws
from streams.trainer.config import TrainerSettings
from streams.trainer.negatives import NegativeSampler
from tests.streams.trainer.test_trainer_learner import ITEMS, chain_events, make_learner


def _sampler(n_rows: int, counts: dict[str, int] | None = None, **over) -> NegativeSampler:
    catalogue = sorted(f"r{k:07d}" for k in range(n_rows))
    settings = TrainerSettings(**{"negatives": 64, "negatives_block": 8, **over})
    def shares(ids: list[str]) -> np.ndarray:  # counts over 100 engagements, as occurrence_shares
        return np.array([max((counts or {}).get(i, 0), 1) / 100 for i in ids])

    return NegativeSampler(settings, catalogue, set(catalogue), shares)


def test_candidates_are_bounded_by_block_and_draws_whatever_the_catalogue():
    for n_rows in (100, 10_000, 1_000_000):
        s = _sampler(n_rows)
        positives = [f"r{k:07d}" for k in range(8)]
        c = s.block(0, 0, positives[:3], [["r0000060"], [], []], positives)
        assert c.ids[:8] == positives and "r0000060" in c.ids
        assert len(c.ids) <= 8 + 64 + 1 and [c.ids[k] for k in c.labels] == positives[:3]
        drawn = c.allowed is None  # the hard negative was drawn too: a shared candidate
        assert c.seen().tolist() == [len(c.ids)] + [len(c.ids) - (not drawn)] * 2
    assert not drawn  # one in 64 of a million rows


def test_a_hard_negative_is_seen_by_its_own_steps_only():
    s = _sampler(10_000, negatives=4)
    c = s.block(0, 0, ["r0000001", "r0000002", "r0000003"], [["r0000500"], [], ["r0000500", "r0000001"]],
                ["r0000001", "r0000002", "r0000003"])
    hard = c.ids.index("r0000500")
    assert c.allowed[:, hard].tolist() == [True, False, True]
    assert c.allowed[:, c.ids.index("r0000001")].all()  # in-batch: every step sees it, once


def test_a_block_shares_its_draws_and_the_next_block_draws_anew():
    s = _sampler(10_000)
    a, b = s.block(0, 1, ["r0000001"], [[]], ["r0000001"]), s.block(0, 1, ["r0000002"], [[]], ["r0000002"])
    c = s.block(0, 2, ["r0000001"], [[]], ["r0000001"])
    assert a.ids[1:] == b.ids[1:] and a.ids[1:] != c.ids[1:]
    assert s.block(1, 1, ["r0000001"], [[]], ["r0000001"]).ids[1:] != a.ids[1:]  # another partition


def test_log_q_is_the_expected_count_under_the_mixture_of_samplers():
    counts = {"r0000001": 30, "r0000002": 10, "r0000003": 0}
    s = _sampler(1000, counts)
    c = s.block(0, 0, ["r0000001"], [[]], ["r0000002", "r0000003", "r0000001"])
    share = {i: max(counts.get(i, 0), 1) / 100 for i in c.ids}
    want = np.log([3 * share[i] + 64 / 1000 for i in c.ids])
    np.testing.assert_allclose(c.log_q, want, rtol=1e-12)
    assert c.log_q[c.ids.index("r0000002")] > c.log_q[c.ids.index("r0000003")]  # the popular one


def test_an_engaged_item_drawn_again_is_one_candidate():
    s = _sampler(10, negatives=200)  # every row is drawn
    c = s.block(0, 0, ["r0000003"], [[]], ["r0000003"])
    assert c.ids.count("r0000003") == 1 and c.ids[c.labels[0]] == "r0000003" and len(c.ids) == 10


def test_full_loss_scores_every_row_without_a_correction():
    s = _sampler(50, loss="full")
    c = s.block(0, 0, ["r0000007"], [["r0000009"]], ["r0000007"])
    assert c.log_q is None and c.allowed is None and c.ids == s.catalogue and c.ids[c.labels[0]] == "r0000007"


def test_occurrence_shares_are_count_min_counts_over_the_decayed_weight():
    from store import IdMemory, IdMemoryConfig, MemoryKV
    from store.config import FrequencyConfig
    from store.frequency import FrequencyFilter

    f = FrequencyFilter(FrequencyConfig(decay_every=4))
    for k in ["a", "a", "b", "a", "c", "a", "b"]:  # one decay after the 4th
        f.observe(k)
    assert f.counts(["a", "b", "c", "z"]).tolist() == [f.count(k) for k in "abcz"] == [2, 1, 1, 0]
    assert f.weight() == 3 + 4 * 0.5  # the 4 before the decay count half
    memory = IdMemory(MemoryKV(), IdMemoryConfig(dim=2))
    memory.observe(["x", "x", "y", "x"], 1.0)
    np.testing.assert_allclose(memory.occurrence_shares(["x", "y", "never"]), [3 / 4, 1 / 4, 1 / 4])


def test_uniform_draws_are_seeded_and_in_range():
    a, b = uniform_draws(1_000_000, 500, (0, 1, 2)), uniform_draws(1_000_000, 500, (0, 1, 2))
    assert np.array_equal(a, b) and a.min() >= 0 and a.max() < 1_000_000
    assert not np.array_equal(a, uniform_draws(1_000_000, 500, (0, 1, 3)))


def test_a_restore_at_a_block_bound_learns_what_an_uninterrupted_learner_does(tmp_path):
    events = chain_events(12)
    whole = make_learner(tmp_path / "w", negatives=6, learn_block=5)
    whole.learn_all(events)
    first = make_learner(tmp_path / "a", negatives=6, learn_block=5)
    first.learn_all(events[:25])  # the trainer snapshots at block bounds (whole blocks only)
    second = make_learner(tmp_path / "b", negatives=6, learn_block=5)
    for item in first.memory.ids():
        second.memory.put_rows([item], [first.memory.get_row(item)])
    second.memory._filter = first.memory._filter  # the snapshot carries the filter too
    second.histories, second.stats = first.histories, first.stats
    second.learn_all(events[25:])
    for item in ITEMS[:38]:
        np.testing.assert_array_equal(whole.memory.get_row(item).vector, second.memory.get_row(item).vector)
    assert whole.stats.steps == second.stats.steps


@pytest.mark.slow  # trains a model twice (180 steps each)
def test_sampled_and_full_losses_both_learn_the_planted_chain(tmp_path):
    for loss in ("sampled", "full"):
        learner = make_learner(tmp_path / loss, lr=0.05, loss=loss, negatives=8, learn_block=4)
        learner.learn_all(chain_events(60))
        assert np.mean(learner.stats.recent[-30:]) < np.mean(learner.stats.recent[:30])
        mean_c = learner.stats.as_dict()["mean_candidates"]
        assert (mean_c == 38) if loss == "full" else (mean_c <= 4 + 8)
