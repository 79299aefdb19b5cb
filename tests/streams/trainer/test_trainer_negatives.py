"""The sampled loss's candidates: bounded whatever the catalogue, in-batch positives of the
block plus its shared uniform draws, log-Q corrected as stated, the same after a restore; the
full softmax stays selectable."""

from __future__ import annotations

import numpy as np

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
        for off in range(7):
            s.record(0, off, f"r{off:07d}")
        c = s.candidates("r0000050", ["r0000060"], 0, 7)
        assert c.ids[:2] == ["r0000050", "r0000060"]
        assert len(c.ids) <= 2 + 7 + 64 and set(c.ids[2:9]) == {f"r{k:07d}" for k in range(7)}


def test_a_block_shares_its_draws_and_the_next_block_draws_anew():
    s = _sampler(10_000)
    a, b = s.candidates("r0000001", [], 0, 8), s.candidates("r0000002", [], 0, 15)
    c = s.candidates("r0000001", [], 0, 16)
    assert a.ids[1:] == b.ids[1:] and a.ids[1:] != c.ids[1:]
    other_partition = s.candidates("r0000001", [], 1, 8)
    assert other_partition.ids[1:] != a.ids[1:]


def test_log_q_is_the_expected_count_under_the_mixture_of_samplers():
    counts = {"r0000001": 30, "r0000002": 10, "r0000003": 0}
    s = _sampler(1000, counts)
    s.record(0, 0, "r0000002")
    s.record(0, 1, "r0000003")
    c = s.candidates("r0000001", [], 0, 2)
    share = {i: max(counts.get(i, 0), 1) / 100 for i in c.ids}
    want = np.log([2 * share[i] + 64 / 1000 for i in c.ids])
    np.testing.assert_allclose(c.log_q, want, rtol=1e-12)
    assert c.log_q[c.ids.index("r0000002")] > c.log_q[c.ids.index("r0000003")]  # the popular one


def test_an_engaged_item_drawn_again_is_not_its_own_negative():
    s = _sampler(10, negatives=200)  # every row is drawn
    s.record(0, 0, "r0000003")
    c = s.candidates("r0000003", [], 0, 1)
    assert c.ids.count("r0000003") == 1 and c.ids[0] == "r0000003" and len(c.ids) == 10


def test_uniform_only_draws_shift_every_logit_alike():
    s = _sampler(1000, {"r0000001": 50})
    c = s.candidates("r0000001", [], 0, 0)  # first of its block: no in-batch positives
    np.testing.assert_allclose(c.log_q, np.log(64 / 1000))


def test_full_loss_scores_every_row_without_a_correction():
    s = _sampler(50, loss="full")
    c = s.candidates("r0000007", ["r0000009"], 0, 3)
    assert c.log_q is None and c.ids[:2] == ["r0000007", "r0000009"] and sorted(c.ids) == s.catalogue


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


def test_a_restore_mid_block_learns_what_an_uninterrupted_learner_does(tmp_path):
    events = chain_events(12)
    whole = make_learner(tmp_path / "w", negatives=6, negatives_block=5)
    whole.learn_all(events)
    first = make_learner(tmp_path / "a", negatives=6, negatives_block=5)
    first.learn_all(events[:23])  # 23: inside a block of 5
    second = make_learner(tmp_path / "b", negatives=6, negatives_block=5)
    for item in first.memory.ids():
        second.memory.put_rows([item], [first.memory.get_row(item)])
    second.memory._filter = first.memory._filter  # the snapshot carries the filter too
    second.histories, second.stats = first.histories, first.stats
    second.sampler.restore(first.sampler.state())
    second.learn_all(events[23:])
    for item in ITEMS[:38]:
        np.testing.assert_array_equal(whole.memory.get_row(item).vector, second.memory.get_row(item).vector)
    assert whole.stats.steps == second.stats.steps


def test_sampled_and_full_losses_both_learn_the_planted_chain(tmp_path):
    for loss in ("sampled", "full"):
        learner = make_learner(tmp_path / loss, lr=0.05, loss=loss, negatives=8, negatives_block=4)
        learner.learn_all(chain_events(60))
        assert np.mean(learner.stats.recent[-30:]) < np.mean(learner.stats.recent[:30])
        mean_c = learner.stats.as_dict()["mean_candidates"]
        assert (mean_c == 38) if loss == "full" else (mean_c <= 1 + 3 + 8)
