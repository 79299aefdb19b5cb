"""Chaos through the real broker (small form; bench/bench_chaos.py runs the larger one):
1,000 engagements while the worker is SIGKILLed three times (once onto an empty data dir)
and a second worker joins and leaves. Nothing lost, nothing valid dead-lettered, every
user's state equal to an offline recompute of the log."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.chaos import ChaosPlan, run_chaos

pytestmark = [pytest.mark.broker, pytest.mark.chaos]


def test_kills_restarts_and_a_rebalance_lose_nothing(kafka_broker, tiny_checkpoint, tmp_path):
    report = run_chaos(kafka_broker, tiny_checkpoint, tmp_path / "chaos", ChaosPlan(seed=7))
    summary = json.dumps(report.as_dict(), indent=1)
    print(summary)
    assert report.kills == 3 and report.empty_dir_restarts == 1 and report.joins == 1, summary
    assert report.lost == 0, summary
    assert report.dead_lettered == 0, summary
    assert report.states_equal == report.states_total == 20, summary
