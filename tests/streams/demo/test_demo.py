"""`threadrec demo` end to end through the real broker: tiny checkpoint, synthetic data, 40 events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.data.synthetic import write_prepared_dir

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[3]


def _demo(tmp_path: Path, broker, ckpt: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "streams.cli", "demo", "--data", str(data), "--checkpoint", str(ckpt),
           "--events", "40", "--holdout", "60", "--rate", "0", "--workdir", str(tmp_path / "work"),
           "--bootstrap", broker.bootstrap, "--broker-kind", broker.kind, "--no-live", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_demo_reports_every_engagement_with_latency_and_metrics(kafka_broker, tiny_checkpoint, tmp_path):
    data = write_prepared_dir(tmp_path / "data", n_items=30, n_users=8, per_user=12, seed=5)
    out, plot = tmp_path / "report.json", tmp_path / "latency.png"
    res = _demo(tmp_path, kafka_broker, tiny_checkpoint, data, "--json", str(out), "--plot", str(plot))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["engagements_in"] == 40
    assert rep["recommendations_out"] == rep["engagements_in"] and rep["deadlettered"] == 0
    assert 0 < rep["latency_ms"]["p50"] <= rep["latency_ms"]["p99"] < 120_000
    assert rep["events_per_s"] > 0
    assert 0 <= rep["online"]["recall@10"] <= 1 and 0 <= rep["online"]["ndcg@10"] <= rep["online"]["recall@10"]
    # every user's recommendations but the last are judged against a next engagement
    assert 0 < rep["online"]["judged"] < rep["recommendations_out"]
    assert rep["online_popularity"]["judged"] == rep["online"]["judged"]  # same judged pairs
    assert rep["worker"]["events"] == 40 and rep["worker"]["model_s"] > 0
    stages = rep["stage_seconds"]  # the worker's per-batch histograms, read from its /metrics
    assert set(stages) >= {"model", "store", "index", "kafka"}
    assert stages["model"]["count"] == stages["model"]["buckets"]["+Inf"] >= 1 and stages["model"]["sum_s"] > 0
    lane = rep["summary_lane"]  # refreshes went to the lane, not the recommendation path
    assert lane["lane_queued"] > 0 and lane["lane_done"] > 0 and rep["worker"]["summaries"] == 0
    assert lane["lane_recomputed"] >= 0 and rep["worker"]["sessions_recomputed"] == 0  # none in the round
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "threadrec demo report" in res.stdout
    assert "/metrics" in res.stdout  # where an operator scrapes the worker


def test_demo_fails_with_one_line_on_a_missing_data_dir(kafka_broker, tiny_checkpoint, tmp_path):
    res = _demo(tmp_path, kafka_broker, tiny_checkpoint, tmp_path / "nope")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"threadrec: error: {tmp_path / 'nope'} is not a prepared data directory (no engagements.jsonl)"]
