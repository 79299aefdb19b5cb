"""bench/report_online_training.py: the README section and plot come from the JSON's numbers."""

from __future__ import annotations

import json

from tests.fixtures.bench_scripts import load_bench_script


def _m(r: float, n: int = 10) -> dict:
    return {"recall@10": r, "ndcg@10": r / 2, "judged": n}


def test_section_table_ratio_and_markers(tmp_path, monkeypatch):
    mod = load_bench_script("report_online_training")
    d = {"events": 100, "checkpoint": "ck", "sync_s": 60.0, "rate": 10.0,
         "popularity": {"overall": _m(0.05), "per_day": {"0": _m(0.04), "1": _m(0.06)}},
         "variants": {"frozen": {"overall": _m(0.10), "per_day": {"0": _m(0.1), "1": _m(0.1)}},
                      "online": {"overall": _m(0.12), "per_day": {"0": _m(0.1), "1": _m(0.14)},
                                 "trainer": {"engagements": 90, "syncs": 7, "rows_sent": 300},
                                 "parameters": {"param_version": 7, "param_lag_p50_s": 0.2,
                                                "param_lag_p99_s": 0.9, "param_lag_n": 300}},
                      "slow": {"overall": _m(0.15), "per_day": {"0": _m(0.15), "1": _m(0.15)}}}}
    (tmp_path / "results").mkdir()
    js = tmp_path / "results/online_training.json"
    js.write_text(json.dumps(d))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:start -->\nold\n<!-- results:end -->\n")
    monkeypatch.setattr("sys.argv", ["r", "--json", str(js), "--readme", str(readme)])
    assert mod.main() == 0
    text = readme.read_text()
    assert text.index("online-training:start") < text.index("results:start")
    assert "| online | 0.1200 | 0.0600 | 10 | 0.100 | 0.140 |" in text
    assert "| popularity | 0.0500 |" in text and "**1.200x**" in text
    assert "version 7" in text and "p99 0.90 s" in text
    assert "online / slow Recall@10: **0.800x**" in text and "Replayed at 10 engagements/s" in text
    assert (tmp_path / "results/online_training.png").stat().st_size > 1000
    assert mod.main() == 0 and readme.read_text().count("online-training:start") == 1


def test_the_ratio_carries_its_paired_interval_over_the_same_judgments():
    bench = load_bench_script("bench_online_training")
    keys = [f"u{k}|{k}.0|i{k}" for k in range(600)]
    frozen = {"hits": {k: int(n % 10 == 0) for n, k in enumerate(keys)}}  # 60 hits
    online = {"hits": {k: int(n % 10 == 0 or n % 25 == 1) for n, k in enumerate(keys)}}  # +24 hits
    online["hits"]["only-online|0|x"] = 1  # judged by one variant only: not paired, not counted
    iv = bench.paired(online, frozen)
    assert iv["n"] == 600 and abs(iv["mean"] - 84 / 60) < 1e-12 and iv["lo"] > 1 and iv["verdict"] == "above"
    assert bench.paired(frozen, frozen)["verdict"] == "on par" and bench.paired({}, frozen) is None
    report = load_bench_script("report_online_training")
    d = {"variants": {"online": {"overall": _m(0.14)}, "frozen": {"overall": _m(0.10)}},
         "online_over_frozen_interval": iv}
    assert f"interval {iv['lo']:.3f}-{iv['hi']:.3f}x over 600 judgments: above" in report.facts(d)
    del d["online_over_frozen_interval"]
    assert "no interval: this run kept no per-judgment hits, so no claim" in report.facts(d)


def test_online_over_slow_carries_its_interval_and_a_null_margin_is_on_par():
    bench, report = load_bench_script("bench_online_training"), load_bench_script("report_online_training")
    keys = [f"u{k}|{k}.0|i{k}" for k in range(500)]
    slow = {"overall": _m(0.12), "hits": {k: int(n % 8 == 0) for n, k in enumerate(keys)}}  # 63 hits
    # online loses 13 of slow's hits and gains 14 others: a null margin with noise both ways
    online = {"overall": _m(0.121),
              "hits": {k: int((n % 8 == 0 and n % 40 != 0) or n % 40 == 3 or n == 5) for n, k in enumerate(keys)}}
    d = {"variants": {"online": online, "slow": slow}} | bench.ratios({"online": online, "slow": slow})
    iv = d["online_over_slow_interval"]
    assert iv["lo"] < 1 < iv["hi"] and iv["verdict"] == "on par" and iv["n"] == 500
    line = next(x for x in report.facts(d).splitlines() if "online / slow" in x)
    assert "(target: above 1)" in line and line.endswith("over 500 judgments: on par")
    del d["online_over_slow_interval"]
    assert report.facts(d).splitlines()[0].endswith("no interval: this run kept no per-judgment hits, "
                                                    "so no claim either way")
