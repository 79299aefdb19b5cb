"""bench/report_scale.py: the pipeline table comes from scale.json's rows, a size that ran out
included with what was measured and the resource named."""

from __future__ import annotations

from tests.fixtures.bench_scripts import load_bench_script


def _doc(rows: list[dict]) -> dict:
    return {"broker": "bundled", "worker": "a worker", "checkpoint": "ck",
            "vectors": {"note": "generated", "generator": "ClusteredVectors", "clusters": 8},
            "warm_states": "warm", "machine": {"cpu": "AnyCPU", "cpu_count": 2}, "rows": rows}


def test_pipeline_section_lists_every_size_and_what_ran_out():
    mod = load_bench_script("report_scale")
    full = {"items": 10_000, "users": 10_000, "state_bytes_p50": 4335, "state_bytes_max": 8180,
            "changelog_bytes_per_engagement": 2621, "saturation_events_per_s": 61.5, "saturation_ratio": 1.0,
            "p50_ms": 120, "p99_ms": 430, "retrieval_ms_per_event": 3.5, "ann_recall_at_100": 0.97,
            "rss_mb": 1566, "restore_s": 19.7, "catalogue_ready_s": 20.7, "sweep_max_block_ms": 8.0,
            "p99_during_retrain_ratio": 1.5, "ran_out": None, "model_ms_per_event": 12.0}
    cut = {"items": 1_000_000, "users": 250_000, "state_bytes_p50": 4400, "state_bytes_max": 9000,
           "restore_s": 250.0, "ran_out": "memory during catalogue doubling (1.2 GiB available)"}
    text = mod.pipeline_section(_doc([full, cut]))
    lines = [line for line in text.splitlines() if line.startswith("| 1")]
    assert lines[0].startswith("| 10,000 | 10,000 | 4335 / 8180 | 2621 | 61.5 (1.00) | 120 / 430 | 3.5 | 0.970 |")
    assert lines[1].startswith("| 1,000,000 | 250,000 | 4400 / 9000 | - | - (-) | - / - |")
    assert lines[1].endswith("| memory during catalogue doubling (1.2 GiB available) | clustered | earlier |")
    # each target is judged on the largest size that measured it
    assert "restore <= 5 min: 250 at 1,000,000 items (met)" in text
    assert "p99 <= 500 ms at 25/s: 430 at 10,000 items (met)" in text
    assert "saturation >= 50 engagements/s: 61.5 at 10,000 items (met)" in text
