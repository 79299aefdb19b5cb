"""The training bar follows the time budget when one is set (issue 24): it finishes at the budget,
and its remaining time never exceeds what is left of the budget."""

from __future__ import annotations

import pytest

from model.config import tiny_t5_config
from model.training.train import TrainOptions, bar_state, train
from streams.data.synthetic import write_prepared_dir
from tests.model.conftest import small_config


def test_no_budget_counts_steps_and_estimates_from_their_pace():
    st = bar_state(None, elapsed_s=10.0, steps_done=5, max_steps=20)
    assert (st.total, st.completed) == (20, 5)
    assert st.remaining_s == pytest.approx(30.0)  # 2 s a step, 15 steps left
    assert bar_state(None, 3.0, 0, 20).remaining_s is None  # no step timed yet


def test_budget_caps_the_remaining_time_of_a_slow_run():
    # the case: 65 of 2000 steps after ~3 min of a 4-min budget; steps alone say ~1:42:58
    st = bar_state(240.0, elapsed_s=190.0, steps_done=65, max_steps=2000)
    assert st.total == 240.0 and st.completed == pytest.approx(190.0)
    assert st.remaining_s == pytest.approx(50.0)
    assert st.fields(65, 2000) == {"total": 240.0, "completed": pytest.approx(190.0), "steps": "65/2000",
                                   "eta": "0:00:50"}


def test_budget_bar_finishes_at_the_budget_or_when_steps_run_out():
    assert bar_state(240.0, 250.0, 65, 2000).completed == 240.0  # past the budget: full, 0 s left
    assert bar_state(240.0, 250.0, 65, 2000).remaining_s == 0.0
    fast = bar_state(240.0, elapsed_s=60.0, steps_done=90, max_steps=100)  # steps end first
    assert fast.remaining_s == pytest.approx(60.0 / 90 * 10)
    assert fast.completed == pytest.approx(240.0 - fast.remaining_s)
    assert bar_state(240.0, 61.0, 100, 100).completed == 240.0  # all steps done: full


@pytest.mark.parametrize("budget", [1.0, 60.0, 240.0])
def test_remaining_never_exceeds_the_budget(budget):
    for elapsed in (0.0, 0.5, budget / 3, budget - 0.1, budget, budget * 2):
        for done in (0, 1, 7, 65, 1999, 2000):
            for step0 in (0, min(done, 5)):
                st = bar_state(budget, elapsed, done, 2000, step0)
                assert st.remaining_s is not None and 0.0 <= st.remaining_s <= max(budget - elapsed, 0.0)
                assert 0.0 <= st.completed <= st.total == budget


def test_resume_times_only_the_steps_of_this_run():
    st = bar_state(None, elapsed_s=10.0, steps_done=15, max_steps=20, step0=10)
    assert st.remaining_s == pytest.approx(10.0)  # 5 steps in 10 s, 5 left
    assert bar_state(None, 1.0, 10, 20, step0=10).remaining_s is None


@pytest.mark.slow  # trains a model
def test_train_draws_the_budget_bar(tmp_path, capsys):
    data_dir = write_prepared_dir(tmp_path / "prepared")
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    train(data_dir, tmp_path / "ckpt", cfg, TrainOptions(steps=1000, batch_size=2, eval_every=0, eval_users=3,
                                                          max_minutes=1e-4), progress=True)
    # a budget below one step: one step, then the bar is drawn full with nothing left
    bars = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train ")]
    assert bars and " 1/1000 " in bars[-1] and bars[-1].rstrip().endswith("0:00:00")
