"""bench/report_trainer_scale.py's table and the shared table helpers (streams/readme.py)."""

from __future__ import annotations

from streams.readme import cell, markdown_table
from tests.fixtures.bench_scripts import load_bench_script


def test_cells_and_tables():
    assert cell(3.14159, ".2f") == "3.14" and cell(None) == "-" and cell(True) == "-"
    assert cell(None, missing="n/a") == "n/a"
    assert markdown_table(("a", "b"), [("1", ""), ("2", "x")]) == "| a | b |\n|---|---|\n| 1 |  |\n| 2 | x |\n"


def test_the_trainer_table_shows_every_row_and_names_what_was_not_measured():
    mod = load_bench_script("report_trainer_scale")
    row = {"rows": 1_000_000, "trainer_events_per_s": 1264.2, "trainer_cpu_us_per_event": 424.0,
           "tower_cpu_us_per_event": 223.0, "rest_cpu_us_per_event": 200.0, "mean_candidates": 673.0,
           "sync_rows": 25_782, "sync_bytes": 15_000_000, "sync_touched_rows": 137_113, "sync_held_back": 111_331,
           "apply_us_per_row": 98.7, "p99_during_sync_ratio": None, "start_full_disk_s": 58.9,
           "start_empty_disk_s": 336.5}
    lines = mod.table([row]).splitlines()
    assert len(lines) == 3 and lines[0].count("|") == lines[2].count("|") == 19
    # a result from before the prepare off the lock: no CPU time, prepare, slice or beside ratio
    assert lines[2] == ("| 1,000,000 | 1,264 | 424 | 223 | 200 | 673 | 25,782 | 15.00 | 137,113 | 111,331 | 98.7 "
                        "| n/a | n/a | n/a | n/a | n/a | 58.9 | 336.5 |")
    cpu = mod.table([{**row, "apply_cpu_us_per_row": 41.25, "prepare_us_per_row": 19.84, "apply_slice_median": 124.0,
                      "p99_beside_prepare_ratio": 1.745}]).splitlines()[2]
    assert cpu.endswith("| 98.7 | 41.2 | 19.8 | 124 | n/a | 1.75 | 58.9 | 336.5 |")
