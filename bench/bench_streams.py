"""Streams benchmark: sustained events/s and event-to-recommendation latency through the broker at a
fixed offered load, and where a worker's time goes (model / store / index / Kafka+Faust).

Runs the demo pipeline without the live view (bundled broker, a real `threadrec worker`
subprocess, warm users, MovieLens-100K held-out period replayed at --rate). The worker's stats
file gives model_s/store_s/index_s (engine counters) and agent_s (time inside the engagements
agent's batches); Kafka/Faust inside the agent = agent_s - engine time; the rest of the wall
time (first engagement produced -> last recommendation received) is the worker waiting for
input plus transport outside the agent.

Saturation: one more replay offered as fast as possible (--saturation-events; lane mode).
FLOP/s: the session encoder's fp32-equivalent FLOPs (torch's flop counter) per second in the
worker's numerics and thread count, against a dense fp32 matmul timed in the same process.

    python bench/bench_streams.py --rate 8 --events 600 --json bench/results/streams.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from streams.demo.report import Report
from streams.demo.run import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[1]

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=8.0, help="offered load, engagements/s")
    p.add_argument("--events", type=int, default=600, help="held-out engagements to replay")
    p.add_argument("--data", type=Path, help="prepared data dir (default MovieLens-100K)")
    p.add_argument("--checkpoint", type=Path, help="default: the demo's cached quick checkpoint")
    p.add_argument("--refresh", default="session_close", help="worker summary refresh policy")
    p.add_argument("--batch-size", type=int, default=64, help="worker micro-batch size")
    p.add_argument("--batch-within-s", type=float, help="worker's longest wait to fill a micro-batch "
                   "(default: the worker's)")
    p.add_argument("--device", help="torch device of the worker")
    p.add_argument("--modes", default="lane,inline",
                   help="summary modes to run in this one run: lane (off the path) and/or inline")
    p.add_argument("--inference", default="auto", help="the worker's numerics (model/numerics.py)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="the worker's torch threads (the demo's 1: broker and replay share the cores)")
    p.add_argument("--saturation-events", type=int, default=600,
                   help="engagements of the as-fast-as-possible replay (0: skip it)")
    p.add_argument("--repeats", type=int, default=1,
                   help="fixed-load replays per mode (p99 of 600 events is noisy on shared cores)")
    p.add_argument("--saturation-threads", default="",
                   help="more saturation replays at these torch thread counts, same run (e.g. 2)")
    p.add_argument("--json", type=Path, default=ROOT / "bench/results/streams.json")
    return p.parse_args(argv)


def breakdown(rep: Report) -> dict[str, dict[str, float]]:
    """Per-event milliseconds and shares of the worker's busy time and of the wall time."""
    w, n = rep.extra["worker"], max(1, rep.extra["worker"]["events"])
    engine = w["model_s"] + w["store_s"] + w["index_s"]
    parts = {"model": w["model_s"], "store": w["store_s"], "index": w["index_s"],
             "kafka_faust": max(0.0, w["agent_s"] - engine)}
    busy = sum(parts.values())
    idle = max(0.0, rep.wall_s - busy)
    return {"per_event_ms": {k: 1000 * v / n for k, v in parts.items()},
            "share_of_busy": {k: v / busy if busy else 0.0 for k, v in parts.items()},
            "share_of_wall": {**{k: v / rep.wall_s for k, v in parts.items()},
                              "idle_or_outside_agent": idle / rep.wall_s}}


def table(result: dict) -> Table:
    t = Table(title=f"streams @ {result['offered_rate']:g} engagements/s offered")
    t.add_column("metric")
    t.add_column("value", justify="right")
    r = result["report"]
    t.add_row("engagements in / recommendations out / dead", f"{r['engagements_in']} / "
              f"{r['recommendations_out']} / {r['deadlettered']}")
    t.add_row("sustained events/s", f"{r['events_per_s']:.2f}")
    t.add_row("latency p50 / p99 (ms)", f"{r['latency_ms']['p50']:.0f} / {r['latency_ms']['p99']:.0f}")
    if "ingest_ms" in r:
        t.add_row("of which ingest p50 / p99 (ms)", f"{r['ingest_ms']['p50']:.0f} / {r['ingest_ms']['p99']:.0f}")
    b = result["breakdown"]
    for k, ms in b["per_event_ms"].items():
        t.add_row(f"{k}: ms/event (share of busy, of wall)",
                  f"{ms:.1f} ({b['share_of_busy'][k]:.0%}, {b['share_of_wall'][k]:.0%})")
    t.add_row("idle / outside the agent (share of wall)",
              f"{b['share_of_wall']['idle_or_outside_agent']:.0%}")
    return t


def options(args: argparse.Namespace, mode: str = "lane", rate: float | None = None,
            events: int | None = None) -> DemoOptions:
    """The demo pipeline as this bench runs it: no live view, no trainer (serving only)."""
    return DemoOptions(data=args.data, checkpoint=args.checkpoint, events=events or args.events,
                       rate=args.rate if rate is None else rate, refresh=args.refresh,
                       batch_size=args.batch_size, batch_within_s=args.batch_within_s,
                       device=args.device, inference=args.inference,
                       live=False, workdir=ROOT / "runs/bench-streams", summary_lane=mode == "lane",
                       trainer=False, torch_threads=args.torch_threads)


def run_mode(args: argparse.Namespace, mode: str, console: Console) -> dict:
    """One replay with summaries in the lane or inline."""
    opts = options(args, mode)
    t0 = time.time()
    rep = run_demo(opts, console)
    out = {"report": rep.as_json(), "breakdown": breakdown(rep), "total_s": time.time() - t0}
    console.print(f"[bold]summaries {mode}[/]")
    console.print(table({"offered_rate": args.rate, **out}))
    return out


def repeated(args: argparse.Namespace, mode: str, console: Console) -> dict:
    """The first replay of a mode in full, and every replay's rate and latency under "repeats"."""
    runs = [run_mode(args, mode, console) for _ in range(max(1, args.repeats))]
    keep = ("events_per_s", "latency_ms", "ingest_ms")
    return {**runs[0], "repeats": [{k: r["report"][k] for k in keep} for r in runs]}


def saturation(args: argparse.Namespace, console: Console, threads: int | None = None) -> dict:
    """Events/s when everything is offered at once (lane mode): the worker's ceiling."""
    opts = options(args, "lane", rate=0, events=args.saturation_events)
    if threads is not None:
        opts.torch_threads = threads
    rep = run_demo(opts, console)
    out = {"report": rep.as_json(), "breakdown": breakdown(rep), "torch_threads": opts.torch_threads}
    console.print(f"[bold]saturation[/] ({opts.torch_threads} threads): {rep.as_json()['events_per_s']:.1f} engagements/s")
    return out


def flop_rate(args: argparse.Namespace, console: Console) -> dict:
    """Encoder FLOP/s in the worker's numerics and threads vs an fp32 matmul, same process."""
    import torch
    from bench_inference import session_texts, timed
    from torch.utils.flop_counter import FlopCounterMode

    from model.device import set_torch_threads
    from model.inference import EmbSumInference
    from streams.demo.run import prepare

    opts = options(args)
    data, _, ckpt = prepare(opts, console)
    threads = set_torch_threads(opts.torch_threads)
    texts = session_texts(data, 32, 8)
    counted = EmbSumInference.from_checkpoint(ckpt, "cpu", "fp32")
    with FlopCounterMode(display=False) as fc:  # int8 kernels are not counted: count in fp32
        counted.encode_sessions(texts)
    flops = fc.get_total_flops()
    served = EmbSumInference.from_checkpoint(ckpt, "cpu", args.inference)
    encode_s = timed(lambda: served.encode_sessions(texts), 5)
    a = torch.randn(1024, 1024)
    mm_s = timed(lambda: a @ a, 5)
    out = {"threads": threads, "numerics": served.mode, "sessions": len(texts), "encode_flops": flops,
           "encode_s": encode_s, "model_gflop_s": flops / encode_s / 1e9,
           "matmul_gflop_s": 2 * 1024**3 / mm_s / 1e9}
    out["model_vs_matmul"] = out["model_gflop_s"] / out["matmul_gflop_s"]
    console.print(f"encoder {out['model_gflop_s']:.1f} GFLOP/s ({served.mode}) vs matmul "
                  f"{out['matmul_gflop_s']:.1f} GFLOP/s fp32, {threads} thread(s)")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    load = os.getloadavg()[0]
    modes = {m: repeated(args, m, console) for m in args.modes.split(",")}
    extra = {"saturation": saturation(args, console)} if args.saturation_events else {}
    more = [int(t) for t in args.saturation_threads.split(",") if t]
    if args.saturation_events and more:
        extra["saturation_by_threads"] = {str(t): saturation(args, console, t) for t in more}
    extra["flops"] = flop_rate(args, console)
    first = modes[next(iter(modes))]
    result = {"offered_rate": args.rate, "events": args.events, "refresh": args.refresh,
              "batch_size": args.batch_size, "batch_within_s": args.batch_within_s,
              "torch_threads": args.torch_threads,
              "inference": args.inference, "modes": modes, **first,
              **extra,
              "checkpoint": str(args.checkpoint or "the demo's cached quick checkpoint"),
              "definitions": {
                  "latency": "engagement record timestamp (produce) -> recommendation consumed",
                  "ingest": "engagement record timestamp (produce) -> the engagement consumed by an "
                            "independent reader (the replay's and the broker's share of latency)",
                  "events_per_s": "engagements / (first engagement produced -> last output)",
                  "kafka_faust": "time inside the engagements agent's batches minus engine time "
                                 "(validation, table reads/writes, sends)",
                  "idle_or_outside_agent": "wall time minus the agent's busy time"},
              "machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": load,
                          "platform": platform.platform(), "device": args.device or "default"}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
