"""bench/bench_encoding_share.py's pure helpers (shares, speed-ups, partition spread) and
bench/report_encoding_share.py's section from a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.fixtures.bench_scripts import load_bench_script

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # it imports scale_pipeline, as when run from bench/
    return load_bench_script("bench_encoding_share")


def test_share_summary_counts_what_was_encoded_twice(bench):
    s = bench.share_summary([520, 500], 1000, 10.0)
    assert s["shares"] == [0.52, 0.5]
    assert s["encoded_twice"] == 20
    assert s["max_off_even"] == pytest.approx(0.02)
    assert s["items_per_s"] == 100.0
    assert bench.share_summary([1000], 1000, 0.0)["items_per_s"] is None


def test_speedups_compare_the_pair_with_the_solo_worker_only(bench):
    cases = {"solo": {"items_per_s": 100.0, "workers": [{"cpu_s": 40.0}]},
             "pair": {"items_per_s": 150.0, "workers": [{"cpu_s": 25.0}, {"cpu_s": 20.0}]}}
    assert bench.speedup(cases) == 1.5
    assert bench.cpu_speedup(cases) == 40.0 / 25.0  # the busier member bounds the pair
    assert bench.speedup({"pair": cases["pair"]}) is None
    assert bench.cpu_speedup({"solo": cases["solo"]}) is None


def test_partition_counts_follow_the_producers_partitioner(bench):
    keys = [f"i{k}" for k in range(500)]
    counts = bench.partition_counts(keys, 16)
    expected = [0] * 16
    for key in keys:
        expected[DefaultPartitioner()(key.encode(), list(range(16)), list(range(16)))] += 1
    assert counts == expected
    assert sum(counts) == 500


def _result() -> dict:
    def worker(name, enc, n, applied):
        return {"worker": name, "items_encoded": enc, "share": enc / n, "encode_items_per_s": 80.0,
                "items_per_cpu_s": 160.0, "vectors_applied_not_encoded_here": applied - enc}
    pair = {"items": 8000, "workers": [worker("w0", 4052, 8000, 8000), worker("w1", 3948, 8000, 8000)],
            "shares": [0.5065, 0.4935], "max_off_even": 0.0065, "encoded_twice": 0, "items_per_s": 114.2,
            "catalogue_on_every_worker_s": 70.1, "worker_cores": 0.72, "machine_busy": 1.0}
    join = {**pair, "workers": [worker("w0", 5429, 8000, 8000), worker("w1", 2571, 8000, 8000)],
            "join": {"left_at_second_ready": 5312, "second_encoded": 2571, "second_share_of_left": 0.484}}
    return {"items": "8000 feed items", "broker": "bundled", "worker": "a worker", "checkpoint": "ck",
            "run": "2026-12-07T01:12Z", "run_s": 381.0, "items_per_partition": [475, 544],
            "machine": {"cpu": "AnyCPU", "cpu_count": 2, "load_avg_at_start": [5.8, 3.6, 2.5],
                        "worker_torch_threads": 1},
            "speedup_pair_over_solo": 1.04, "cpu_speedup_pair_over_solo": 1.52,
            "cases": {"pair": pair, "join": join}}


def test_section_gives_each_workers_share_and_the_join():
    text = load_bench_script("report_encoding_share").section(_result())
    assert "| pair | 2 | 4,052 (50.6%) / 3,948 (49.4%) | 0 | 80 / 80 | 160 / 160 | 114 | 70.1 | 0.72 | 100% |" in text
    assert "each encoded 50.6% and 49.4% of the 8,000 items (the most uneven 0.7% off half)" in text
    assert "1.04x as many items/s as one worker" in text
    assert "1.52x were each worker given a free core" in text
    assert "became ready with 5,312 items left and encoded 2,571 of them (48%)" in text
    assert "it read the other 5,429 vectors without encoding" in text
    assert "475-544 items" in text
