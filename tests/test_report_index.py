"""bench/report_index.py: one line per (vectors, size, layout, budget), codes and items side by side."""

from __future__ import annotations

from tests.fixtures.bench_scripts import load_bench_script


def _row(layout: str, queries: str, recall: float, ms: float, default: bool) -> dict:
    return {"data": "fitted", "items": 1_000_000, "layout": layout, "mode": "ivf", "nlist": 1722,
            "nprobe": 257, "scan_rows": 48_000, "default_nprobe": default, "queries": queries,
            "recall_at_100": recall, "build_s": 16.0, "cpu_ms_per_engagement": ms}


def test_the_index_section_pairs_codes_and_items_and_marks_the_default():
    mod = load_bench_script("report_index")
    doc = {"machine": {"cpu_count": 2, "load_avg_at_end": [1.0, 2.0, 3.0], "faiss": "1.15.1", "threads": 1},
           "rows": [_row("banded", "codes", 0.961, 25.04, True), _row("banded", "items", 0.99, 27.0, True),
                    {**_row("single", "codes", 0.55, 3.81, False), "nlist": 1000, "nprobe": 60},
                    _row("banded-shares", "codes", 0.975, 34.3, True)]}  # only the banded layout is the default
    text = mod.section(doc)
    lines = [line for line in text.splitlines() if line.startswith("| fitted")]
    # the run's default (48,000) is no longer today's (IndexConfig.scan_rows)
    assert lines == ["| fitted | 1,000,000 | banded | 48,000 (default then) | 1722 | 0.961 / 0.990 | 25.0 / 27.0 |",
                     "| fitted | 1,000,000 | single | 48,000 | 1000 | 0.550 / - | 3.8 / - |",
                     "| fitted | 1,000,000 | banded-shares | 48,000 | 1722 | 0.975 / - | 34.3 / - |"]
    assert "load average 1.0, 2.0, 3.0" in text


def test_a_later_run_marks_todays_default_budget_and_the_run_default_that_still_holds():
    from store.config import IndexConfig

    mod = load_bench_script("report_index")
    now = IndexConfig().scan_rows
    rows = [{**_row("banded", "codes", 0.957, 8.4, True), "scan_rows": now},
            {**_row("banded", "codes", 0.98, 13.3, False), "scan_rows": 25_000}]
    doc = {"machine": {"cpu_count": 2, "load_avg_at_end": [1.0, 1.0, 1.0], "faiss": "1.15.1", "threads": 1},
           "rows": rows[:1]}
    assert f"| {now:,} (default) |" in mod.section(doc)
    later = {**doc, "rows": rows, "config": {"vectors": "/x/feed_vectors"}, "encoded_items": 52_000,
             "users_with_codes": 400, "index_defaults": {"query_merge_cos": 0.999}}
    lines = [line for line in mod.later_run("index_merged.json", later).splitlines() if line.startswith("| fitted")]
    assert lines[0].startswith(f"| fitted | 1,000,000 | banded | {now:,} (default now) |")
    assert "| 25,000 |" in lines[1] and "default" not in lines[1]
