"""bench/report_speed.py: the README's speed section comes from the two JSON files' numbers."""

from __future__ import annotations

import json

from tests.fixtures.bench_scripts import load_bench_script


def _rep(eps: float, p99: float) -> dict:
    return {"events_per_s": eps, "latency_ms": {"p50": p99 / 2, "p99": p99},
            "ingest_ms": {"p50": 10.0, "p99": 30.0},
            "worker": {"events": 100, "model_s": 2.5, "summaries": 0},
            "summary_lane": {"lane_done": 7, "lane_wait_p50_s": 0.25, "lane_wait_p99_s": 1.5}}


def test_speed_section_shows_both_files_between_markers(tmp_path, monkeypatch):
    mod = load_bench_script("report_speed")
    streams = {"offered_rate": 25, "refresh": "session_close", "events": 100, "checkpoint": "ck",
               "inference": "int8", "modes": {"lane": {"report": _rep(21.0, 812.0)}},
               "saturation": {"report": _rep(33.3, 9000.0)},
               "flops": {"model_gflop_s": 40.0, "matmul_gflop_s": 80.0, "numerics": "int8",
                         "threads": 1, "model_vs_matmul": 0.5}}
    inference = {"cpu": {"cpu": "AnyCPU", "capability": "AVX2", "threads": 2}, "checkpoint": "ck",
                 "skipped": {"bf16": "no native bf16"}, "tolerance": 0.01, "chosen": "int8",
                 "auto_resolves_to": "int8",
                 "modes": {m: {"encode_sessions_per_s": s, "summaries_per_s": s / 4,
                               "quality": {"hybrid": {"recall@10": q, "ndcg@10": q / 2}}}
                           for m, s, q in (("fp32", 60.0, 0.2400), ("int8", 90.0, 0.2391))}}
    (tmp_path / "s.json").write_text(json.dumps(streams))
    (tmp_path / "i.json").write_text(json.dumps(inference))
    onnx = {"onnxruntime": "1.32.0", "threads": 1, "adopt_at": 1.2, "adopted": False,
            "speedup_over_torch_int8": 1.08,
            "encoders": {"torch int8": {"sessions_per_s": 60.0}, "onnxruntime int8": {"sessions_per_s": 64.8}}}
    (tmp_path / "onnx.json").write_text(json.dumps(onnx))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- reliability:end -->\ntail\n")
    argv = ["r", "--streams", str(tmp_path / "s.json"), "--inference", str(tmp_path / "i.json"),
            "--readme", str(readme)]
    monkeypatch.setattr("sys.argv", argv)
    assert mod.main() == 0 and mod.main() == 0  # the second run replaces, never duplicates
    text = readme.read_text()
    assert text.count("speed:start") == 1 and text.index("reliability:end") < text.index("speed:start")
    assert "| lane, 25/s offered | 21.0 | 406 / 812 | 10 / 30 | 25.0 | 0 | 7 |" in text
    assert "| lane, all offered at once (saturation) | 33.3 |" in text
    assert "40.0 GFLOP/s (int8" in text and "(50%)" in text and "p99 1.50 s" in text
    assert "| int8 | 90.0 | 22.5 | hybrid | 0.2391 | 0.1196 |" in text
    assert "onnxruntime int8 64.8" in text and "1.08x torch int8: not adopted (needs 1.2x)" in text
    assert "**int8**" in text and "bf16: no native bf16" in text and text.endswith("tail\n")
