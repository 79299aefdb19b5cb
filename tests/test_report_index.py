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
    assert lines == ["| fitted | 1,000,000 | banded | 48,000 (default) | 1722 | 0.961 / 0.990 | 25.0 / 27.0 |",
                     "| fitted | 1,000,000 | single | 48,000 | 1000 | 0.550 / - | 3.8 / - |",
                     "| fitted | 1,000,000 | banded-shares | 48,000 | 1722 | 0.975 / - | 34.3 / - |"]
    assert "load average 1.0, 2.0, 3.0" in text
