"""Chaos through the real broker (small form; bench/bench_chaos.py runs the larger one):
1,000 engagements (480 in the default configuration) while the worker is SIGKILLed three times (once onto an empty data dir)
and a second worker joins and leaves. Nothing lost, nothing valid dead-lettered, every
user's state equal to an offline recompute of the log."""

from __future__ import annotations

import json

import pytest

from streams.chaos import ChaosPlan, run_chaos

pytestmark = [pytest.mark.broker, pytest.mark.chaos]


def test_kills_restarts_and_a_rebalance_lose_nothing(kafka_broker, tiny_checkpoint, tmp_path):
    report = run_chaos(kafka_broker, tiny_checkpoint, tmp_path / "chaos", ChaosPlan(seed=7))
    summary = json.dumps(report.as_dict(), indent=1)
    print(summary)
    assert report.kills == 3 and report.empty_dir_restarts == 1 and report.joins == 1, summary
    assert report.lost == 0, summary
    assert report.dead_lettered == 0, summary
    assert report.states_equal == report.states_total == 20, summary


def test_the_default_configuration_loses_nothing(kafka_broker, tiny_checkpoint, tmp_path):
    """The worker as users run it: summary lane, --inference auto, a hybrid checkpoint with its
    parameters replica, and the trainer beside it, killed -9 as well."""
    # 8/s: its longer start-ups (about 15 s) land mid-stream, not after the last engagement
    plan = ChaosPlan(users=12, per_user=40, rate=8.0, seed=11, mode="default", join_leave=False)
    report = run_chaos(kafka_broker, tiny_checkpoint, tmp_path / "chaos", plan)
    summary = json.dumps(report.as_dict(), indent=1)
    print(summary)
    assert report.kills == 3 and report.empty_dir_restarts == 1 and report.trainer_kills == 1, summary
    assert report.lost == 0 and report.wrongly_deadlettered == 0, summary
    assert report.states_equal == report.states_total == 12, summary
