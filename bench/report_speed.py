"""Turns bench/results/streams.json and bench/results/inference.json into the README's speed
section (between `<!-- speed:start -->` and `<!-- speed:end -->`).

    python bench/report_speed.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streams.readme import splice_section

ROOT = Path(__file__).resolve().parents[1]


def _row(name: str, rep: dict) -> str:
    w, lat = rep["worker"], rep["latency_ms"]
    n = max(1, w["events"])
    ing = rep.get("ingest_ms")
    ingest = f"{ing['p50']:,.0f} / {ing['p99']:,.0f}" if ing else "n/a"
    return (f"| {name} | {rep['events_per_s']:.1f} | {lat['p50']:,.0f} / {lat['p99']:,.0f} | {ingest} | "
            f"{1000 * w['model_s'] / n:.1f} | {w.get('summaries', 0)} | "
            f"{(rep.get('summary_lane') or {}).get('lane_done', 0)} |")


def streams_section(path: Path) -> str:
    if not path.exists():
        return "No streams run recorded yet (`python bench/bench_streams.py`).\n"
    d = json.loads(path.read_text())
    rows = ["| run | events/s | latency p50 / p99 (ms) | of which ingest p50 / p99 (ms) "
            "| model ms/event | summaries on the path | summaries in the lane |",
            "|---|---|---|---|---|---|---|"]
    for mode, r in d["modes"].items():
        rows.append(_row(f"{mode}, {d['offered_rate']:g}/s offered", r["report"]))
    if "saturation" in d:
        rows.append(_row("lane, all offered at once (saturation)", d["saturation"]["report"]))
    for t, r in d.get("saturation_by_threads", {}).items():
        rows.append(_row(f"lane, saturation, {t} torch threads", r["report"]))
    threads = d.get("torch_threads") or "every core"
    wait = "the worker's default" if d.get("batch_within_s") is None else f"{d['batch_within_s']:g} s"
    text = (f"Streams (`bench/bench_streams.py`; worker numerics `{d.get('inference', 'fp32')}`, "
            f"torch threads {threads}, micro-batch wait {wait}, "
            f"refresh `{d['refresh']}`, {d['events']} engagements per run, checkpoint "
            f"{d['checkpoint']}):\n\n" + "\n".join(rows) + "\n")
    for mode, r in d["modes"].items():
        reps = r.get("repeats") or []
        if len(reps) > 1:
            p99 = [x["latency_ms"]["p99"] for x in reps]
            text += (f"\n{mode}, {d['offered_rate']:g}/s offered, {len(reps)} replays in this run: p99 "
                     + ", ".join(f"{v:,.0f}" for v in p99) + f" ms (median {sorted(p99)[len(p99) // 2]:,.0f} ms; "
                     "the table shows the first).\n")
    lane = d["modes"].get("lane", {}).get("report", {}).get("summary_lane") or {}
    if lane.get("lane_wait_p99_s") is not None:
        text += (f"\nSummary lane, queue to done: p50 {lane['lane_wait_p50_s']:.2f} s, "
                 f"p99 {lane['lane_wait_p99_s']:.2f} s.\n")
    text += stage_table(d["modes"].get("lane", {}).get("report", {}).get("stage_seconds"), d["offered_rate"])
    f = d.get("flops")
    if f:
        text += (f"\nSession encoder: {f['model_gflop_s']:.1f} GFLOP/s ({f['numerics']}, fp32-equivalent "
                 f"FLOPs) against a dense fp32 matmul at {f['matmul_gflop_s']:.1f} GFLOP/s, "
                 f"{f['threads']} thread(s), same process ({f['model_vs_matmul']:.0%}).\n")
    return text


def _bound(h: dict, q: float) -> str:
    """The smallest histogram bound holding a share q of the batches (an upper bound of that quantile)."""
    need = q * h["count"]
    bounds = sorted(((float(le), n) for le, n in h["buckets"].items()), key=lambda b: b[0])
    le = next((b for b, n in bounds if n >= need), float("inf"))
    if le == float("inf"):  # beyond the last finite bucket
        return f"> {1000 * max(b for b, _ in bounds if b != float('inf')):,.0f} ms"
    return f"<= {1000 * le:,.0f} ms"


def stage_table(stages: dict | None, rate: float) -> str:
    """Per-batch time of each stage, from the worker's Prometheus histograms (lane run)."""
    if not stages:
        return ""
    rows = [f"\nPer-batch stage time, lane run at {rate:g}/s (the worker's `threadrec_stage_seconds` "
            "histograms; quantiles are bucket bounds):\n", "| stage | batches | mean (ms) | p50 | p99 |",
            "|---|---|---|---|---|"]
    for name, h in stages.items():
        if h["count"]:
            rows.append(f"| {name} | {h['count']} | {1000 * h['sum_s'] / h['count']:.1f} | {_bound(h, 0.5)} | "
                        f"{_bound(h, 0.99)} |")
    return "\n".join(rows) + "\n"


def inference_section(path: Path) -> str:
    if not path.exists():
        return "No numerics run recorded yet (`python bench/bench_inference.py`).\n"
    d = json.loads(path.read_text())
    rows = ["| numerics | sessions/s | summaries/s | model | valid Recall@10 | valid nDCG@10 |",
            "|---|---|---|---|---|---|"]
    for mode, r in d["modes"].items():
        for name, q in r["quality"].items():
            rows.append(f"| {mode} | {r['encode_sessions_per_s']:.1f} | {r['summaries_per_s']:.1f} | "
                        f"{name} | {q['recall@10']:.4f} | {q['ndcg@10']:.4f} |")
    skipped = "; ".join(f"{m}: {why}" for m, why in d["skipped"].items()) or "none"
    return (f"Numerics (`bench/bench_inference.py`, {d['cpu']['cpu']}, {d['cpu']['capability']}, "
            f"{d['cpu']['threads']} threads, checkpoint `{d['checkpoint']}`, one run):\n\n"
            + "\n".join(rows) + f"\n\nKept as the CPU default (fastest within "
            f"{d['tolerance']:.0%} relative Recall@10 of fp32): **{d['chosen']}**; `--inference auto` "
            f"resolves to `{d['auto_resolves_to']}` here. Skipped: {skipped}.\n")


def onnx_section(path: Path) -> str:
    """One line: did ONNX Runtime beat torch on the session encoder here (bench/bench_onnx.py)?"""
    if not path.exists():
        return ""
    d = json.loads(path.read_text())
    speeds = ", ".join(f"{n} {r['sessions_per_s']:.1f}" for n, r in d["encoders"].items())
    verdict = "adopted" if d["adopted"] else f"not adopted (needs {d['adopt_at']:.1f}x)"
    return (f"\nONNX Runtime {d['onnxruntime']} (`bench/bench_onnx.py`, session encoder only, "
            f"{d['threads']} thread(s), sessions/s): {speeds}. Best ONNX Runtime is "
            f"{d['speedup_over_torch_int8']:.2f}x torch int8: {verdict}.\n")


def _shown(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def section(streams: Path, inference: Path) -> str:
    return (f"## Results: speed\n\nGenerated by `bench/report_speed.py` from "
            f"`{_shown(streams)}` and `{_shown(inference)}`.\n\n"
            f"{streams_section(streams)}\n{inference_section(inference)}"
            f"{onnx_section(inference.parent / 'onnx.json')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=Path, default=ROOT / "bench/results/streams.json")
    ap.add_argument("--inference", type=Path, default=ROOT / "bench/results/inference.json")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args()
    body = section(args.streams.resolve(), args.inference.resolve())
    splice_section(args.readme, "speed", body, after="<!-- reliability:end -->")  # new: after reliability
    print(f"wrote the speed section of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
