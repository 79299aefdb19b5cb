"""bench/bench_ml100k_guard.py's pure helpers (pairing, verdict) and bench/report_ml100k_guard.py."""

from __future__ import annotations

import json
import math

import pytest

from tests.fixtures.bench_scripts import load_bench_script


@pytest.fixture(scope="module")
def guard():
    return load_bench_script("bench_ml100k_guard")


@pytest.mark.parametrize(("ratio", "lo", "hi", "expected"), [
    (1.0, None, None, "not worse"),
    (0.98, None, None, "not worse"),  # exactly 2% lower meets the bar
    (0.979, None, None, "worse"),
    (0.99, 0.985, 1.02, "not worse (resolved)"),
    (0.95, 0.90, 0.97, "worse (resolved)"),
    (1.05, 0.80, 1.30, "on par (point at or above the bar)"),  # the interval spans the line
    (0.90, 0.70, 1.10, "on par (point below the bar)"),
])
def test_verdict_is_the_two_percent_bar_and_resolved_only_off_the_line(guard, ratio, lo, hi, expected):
    assert guard.verdict(ratio, lo, hi) == expected


def test_pairs_only_engagements_judged_in_every_run_and_averages_runs(guard):
    a = [["u1", "i1", 1.0, 0], ["u1", "i2", 2.0, None], ["u2", "i3", 3.0, 9], ["u3", "i9", 9.0, 0]]
    b = [["u1", "i1", 1.0, 3], ["u1", "i1", 1.0, 3], ["u1", "i2", 2.0, 10], ["u2", "i3", 3.0, 1]]
    keys = guard.common_keys([a, b])
    assert keys == {("u1", "i1", 1.0), ("u1", "i2", 2.0), ("u2", "i3", 3.0)}  # u3 is only in a
    gains = guard.per_user_gains([a, b], keys)
    assert set(gains) == {"u1", "u2"}
    # u1: run a hits at rank 0 (gain 1), run b hits once at rank 3 (its duplicate counts once;
    # rank 10 is outside the top 10): per run 1 hit, gain (1 + 1/log2(5)) / 2
    assert gains["u1"][0] == 1.0 and math.isclose(gains["u1"][1], (1 + 1 / math.log2(5)) / 2)
    assert gains["u2"][0] == 1.0 and math.isclose(gains["u2"][1], (1 / math.log2(11) + 1 / math.log2(3)) / 2)
    per_engagement = guard.per_user_gains([a, b], keys, lambda key: key)
    assert per_engagement[("u1", "i1", 1.0)][0] == 1.0 and per_engagement[("u1", "i2", 2.0)] == (0.0, 0.0)


def _doc() -> dict:
    run = {"online": {"recall@10": 0.05, "ndcg@10": 0.02}}
    return {"command": "python bench/bench_ml100k_guard.py --old 6bfe463 --runs 2",
            "demo_command": "threadrec demo --checkpoint CKPT", "tolerance": 0.02,
            "checkpoint": "/tmp/x/checkpoints/demo-quick/abc/model", "cpu_count": 2,
            "load_avg_at_start": [2.0, 1.5, 1.0], "commits": {"old": "6bfe463", "new": "7db3aa3"},
            "online": {"judged_in_every_run": 950, "users": 120,
                       "recall@10": {"old": 0.05, "new": 0.049, "ratio": 0.98, "ratio_lo": 0.8,
                                     "ratio_hi": 1.2, "verdict": "not worse", "ratio_lo_engagements": 0.85,
                                     "ratio_hi_engagements": 1.1},
                       "ndcg@10": {"old": 0.02, "new": 0.021, "ratio": 1.05, "ratio_lo": 0.85,
                                   "ratio_hi": 1.25, "verdict": "not worse"}},
            "offline": {"hybrid": {"old": 0.1, "new": 0.1, "ratio": 1.0, "verdict": "not worse"}},
            "runs": {"old": [run, run], "new": [run]},
            "note": "Read: on par.", "diagnostics": [{"label": "query_codes 0", "recall@10": 0.051, "ndcg@10": 0.02, "ratio_to_old_mean": 1.02}]}


def test_the_section_has_one_row_per_metric_with_old_new_ratio_and_verdict():
    text = load_bench_script("report_ml100k_guard").section(_doc())
    rows = [line for line in text.splitlines() if line.startswith("| online") or line.startswith("| offline")]
    assert rows == ["| online recall@10 (demo) | 0.0500 | 0.0490 | 0.980 | 0.800-1.200 | not worse |",
                    "| online ndcg@10 (demo) | 0.0200 | 0.0210 | 1.050 | 0.850-1.250 | not worse |",
                    "| offline test Recall@10, hybrid | 0.1000 | 0.1000 | 1.000 | - | not worse |"]
    assert "| metric | old (6bfe463) | new (7db3aa3) |" in text
    assert "old: 0.0500 / 0.0200, 0.0500 / 0.0200; new: 0.0500 / 0.0200" in text
    assert text.endswith("\nRead: on par.\n")
    assert "- query_codes 0: Recall@10 0.0510 (1.020x the old runs' mean)" in text
    assert "resampling engagements instead, Recall@10 new / old 0.850-1.100" in text
    assert "load average 2.0, 1.5, 1.0" in text and "`demo-quick/abc/model`" in text


def _demo(ranks: list) -> dict:
    events = [["u1", f"i{k}", float(k), r] for k, r in enumerate(ranks)]
    hits = sum(r is not None for r in ranks) / len(ranks)
    return {"online": {"recall@10": hits, "ndcg@10": 0.0, "judged": len(ranks)}, "judged_events": events}


def test_summarise_reads_a_work_dir_of_runs_offline_results_and_diagnostics(guard, tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"runs": 1, "checkpoint": "c", "commits": {}}))
    (tmp_path / "demo-old-0.json").write_text(json.dumps(_demo([0, None, 1, None])))  # 2 hits
    (tmp_path / "demo-new-0.json").write_text(json.dumps(_demo([0, None, None, None])))  # 1 hit
    (tmp_path / "diag-qc.json").write_text(json.dumps({**_demo([0, 1, 2, None]), "label": "qc 0"}))
    for code, r in (("old", 0.10), ("new", 0.11)):
        (tmp_path / f"offline-{code}.json").write_text(json.dumps({"models": {"hybrid": {"full_recall@10": r}}}))
    doc = guard.summarise(tmp_path)
    # one user: every resample is that user, so the interval is the point and the verdict resolved
    assert doc["online"]["recall@10"]["ratio"] == 0.5 and doc["online"]["recall@10"]["verdict"] == "worse (resolved)"
    assert math.isclose(doc["offline"]["hybrid"]["ratio"], 1.1) and doc["offline"]["hybrid"]["verdict"] == "not worse"
    assert doc["diagnostics"] == [{"label": "qc 0", "recall@10": 0.75, "ndcg@10": 0.0, "ratio_to_old_mean": 1.5}]
    (tmp_path / "offline-new.json").unlink()  # stopped before the new code's offline run finished
    doc = {**guard.summarise(tmp_path), "command": "c", "demo_command": "d", "cpu_count": 2,
           "commits": {"old": "a", "new": "b"}, "load_avg_at_start": [1.0, 1.0, 1.0]}
    assert doc["offline"] == {} and doc["online"]["recall@10"]["ratio"] == 0.5
    assert "(test split, fp32): not finished in this run" in load_bench_script("report_ml100k_guard").section(doc)


def test_offline_figures_reused_from_an_earlier_run_say_so(guard, tmp_path):
    earlier, work = tmp_path / "earlier", tmp_path / "work"
    earlier.mkdir()
    work.mkdir()
    (earlier / "offline-new.json").write_text(json.dumps({"models": {"hybrid": {"full_recall@10": 0.1}}}))
    (earlier / "offline-new.meta.json").write_text(json.dumps({"wall_s": 1900}))
    guard.reuse_offline(earlier, work, "new")
    assert json.loads((work / "offline-new.meta.json").read_text()) == {"wall_s": 1900, "reused_from": str(earlier)}
    doc = {**_doc(), "offline_runs": {"new": guard.offline_doc(work / "offline-new.json")}}
    assert f"(test split, fp32), reused from an earlier run of the same checkpoint (work dir {earlier.name}). Bar" in \
        load_bench_script("report_ml100k_guard").section(doc)
