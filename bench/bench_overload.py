"""Overload: does a worker stay bounded when offered twice what it can do, and drain afterwards?

Measures the saturation rate first (a backlog replayed as fast as possible, events/s the worker
handled), then offers 2x that rate for --minutes, sampling the worker's RSS, engagements
produced and handled; then waits until the lag drains. Bundled broker, MovieLens-100K, the
demo's quick checkpoint (trained once, cached), a real `threadrec worker` subprocess.

    python bench/bench_overload.py --minutes 5 --json bench/results/overload.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from model.records import read_jsonl, write_jsonl
from streams.demo.run import DemoOptions, load_items, prepare
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.processes import stop_process
from streams.kafka.replay import ensure_topic_set
from streams.kafka.settings import KafkaSettings
from streams.worker.process import WorkerProcess, start_replay

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def handled(worker: WorkerProcess) -> int:
    st = worker.stats() or {}
    return int(st.get("events", 0))


def saturation(k, worker, events: list[dict], workdir: Path, console) -> float:
    """Events/s the worker handles with a backlog in front of it."""
    path = workdir / "saturation.jsonl"
    write_jsonl(path, events)
    start = handled(worker)
    proc = start_replay(k, path, None, workdir / "replay-sat.log")
    # polled while the replay runs: a fast worker may finish before the replay process exits
    first = None
    deadline = time.monotonic() + 600
    while handled(worker) < start + len(events) and time.monotonic() < deadline:
        worker.check_alive()
        n = handled(worker)
        if first is None and n > start:
            first = (time.monotonic(), n)
        time.sleep(0.2)
    proc.wait()
    last = (time.monotonic(), handled(worker))
    first = first or last
    rate = (last[1] - first[1]) / max(1e-9, last[0] - first[0])
    console.log(f"saturation: {rate:.1f} events/s over {last[1] - first[1]} events")
    return rate


def overload(k, worker, events: list[dict], rate: float, minutes: float, workdir: Path,
             console) -> dict:
    """Offer `rate` for `minutes`; sample RSS and lag; then time the drain."""
    n = int(rate * minutes * 60)
    path = workdir / "overload.jsonl"
    write_jsonl(path, events[:n])
    start, t0 = handled(worker), time.monotonic()
    proc = start_replay(k, path, rate, workdir / "replay-over.log")
    samples = []
    offered_end = None
    while True:
        worker.check_alive()
        t = time.monotonic() - t0
        done = handled(worker) - start
        produced = min(n, int(rate * t)) if proc.poll() is None else n
        if proc.poll() is not None and offered_end is None:
            offered_end = t
        samples.append({"t": round(t, 1), "rss_mb": round(rss_mb(worker.proc.pid), 1),
                        "produced": produced, "handled": done, "lag": produced - done})
        if len(samples) % 12 == 0:
            console.log(samples[-1])
        if done >= n or t > minutes * 60 * 6:
            break
        time.sleep(5.0)
    stop_process(proc)
    drained = samples[-1]["handled"] >= n
    return {"offered_rate": rate, "offered_events": n, "offer_s": offered_end,
            "drained": drained, "drain_s": samples[-1]["t"] - (offered_end or 0) if drained else None,
            "rss_mb_start": samples[0]["rss_mb"], "rss_mb_max": max(s["rss_mb"] for s in samples),
            "rss_mb_end": samples[-1]["rss_mb"], "samples": samples}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--factor", type=float, default=2.0, help="offered load / saturation rate")
    ap.add_argument("--sat-events", type=int, default=600)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs/overload")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/overload.json")
    args = ap.parse_args()
    console = Console()
    args.workdir.mkdir(parents=True, exist_ok=True)
    opts = DemoOptions(events=10, workdir=args.workdir, live=False)
    data, ho, ckpt = prepare(opts, console)
    events = read_jsonl(data / "engagements.jsonl")  # event-time ordered, 100k
    with EmbeddedBroker() as broker:
        k = KafkaSettings(bootstrap=broker.bootstrap, broker_kind="tansu", topic_prefix="ovl-",
                          partitions=2)
        ensure_topic_set(k)
        # the broker is new on every run, so the worker's local state must be too (faust refuses
        # changelog offsets the new broker has never seen)
        shutil.rmtree(args.workdir / "worker", ignore_errors=True)
        worker = WorkerProcess(k, ckpt, args.workdir / "worker", args.workdir / "worker.log",
                               refresh="session_close", batch_size=64, loglevel="info",
                               torch_threads=1).start()  # shares the 2 cores with broker and replay
        try:
            load_items(k, worker, data, len(ho.items), console)
            sat = saturation(k, worker, events[: args.sat_events], args.workdir, console)
            result = overload(k, worker, events[args.sat_events:], args.factor * sat,
                              args.minutes, args.workdir, console)
        finally:
            worker.stop()
    result = {"saturation_events_per_s": sat, "factor": args.factor, "minutes": args.minutes,
              "checkpoint": str(ckpt), **result}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    console.log({k: v for k, v in result.items() if k != "samples"})
    return 0 if result["drained"] else 1


if __name__ == "__main__":
    sys.exit(main())
