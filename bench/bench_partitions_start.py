"""Worker start-up on the bundled broker at 4 and at 16 partitions: what the default that lets 16
workers share a deployment costs the one worker that holds every partition (the embedded case).

Per run: a fresh topic prefix, the deployment's topics at P partitions, a small synthetic
catalogue and engagements; a `threadrec worker` subprocess with the tiny model (model loading
does not depend on P, so the times are Kafka and faust). Measured: process start -> ready
(partitions assigned, tables recovered, replicas current) and -> every engagement handled, RSS
at ready; then the same worker restarted on its data dir (table recovery of P changelog
partitions). Runs alternate between the counts so a busy machine slows both alike.

    python bench/bench_partitions_start.py --repeats 2 --json bench/results/partitions_start.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from model.records import write_jsonl
from model.training.tiny import write_tiny_checkpoint
from streams.data.synthetic import make_engagements, make_items
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.replay import ensure_topic_set, replay_to_broker
from streams.kafka.settings import KafkaSettings
from streams.worker.process import WorkerProcess

FLAGS = dict(device="cpu", inference="fp32", summary_lane=False, torch_threads=1)


def rss_mb(pid: int) -> float:
    """Resident set size of a process from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_start(worker: WorkerProcess, events: int | None, timeout_s: float) -> dict:
    """Seconds from process start to ready (and to `events` handled); RSS at ready."""
    worker.stats_file.unlink(missing_ok=True)  # a restart must not read the last run's "ready"
    t0 = time.monotonic()
    worker.start()
    worker.wait_until(lambda s: s.get("ready"), timeout_s, "ready")
    out = {"ready_s": time.monotonic() - t0, "rss_mb": rss_mb(worker.proc.pid)}
    if events:
        worker.wait_until(lambda s: s.get("events", 0) >= events, timeout_s, "done")
        out["handled_s"] = time.monotonic() - t0
    return out


def one_run(bootstrap: str, partitions: int, ckpt: Path, root: Path, n_items: int,
            users: int, per_user: int, timeout_s: float) -> dict:
    """First start on an empty data dir with a backlog, then a restart on the same dir."""
    rng = random.Random(0)
    items = make_items(n_items, rng)
    events = make_engagements(items, users, per_user, rng)
    write_jsonl(root / "items.jsonl", items)
    write_jsonl(root / "engagements.jsonl", events)
    k = KafkaSettings(bootstrap=bootstrap, broker_kind="tansu", partitions=partitions,
                      topic_prefix=f"ps-{uuid.uuid4().hex[:8]}-")
    ensure_topic_set(k)
    replay_to_broker([root / "items.jsonl", root / "engagements.jsonl"], k, progress=False)
    worker = WorkerProcess(k, ckpt, root / "data", root / "worker.log", **FLAGS)
    try:
        first = one_start(worker, len(events), timeout_s)
    finally:
        worker.stop()
    try:
        again = one_start(worker, None, timeout_s)
    finally:
        worker.stop()
    return {"partitions": partitions, **first, "restart_ready_s": again["ready_s"],
            "restart_rss_mb": again["rss_mb"]}


def summary(runs: list[dict], counts: list[int]) -> dict:
    """Median of each measure per partition count."""
    keys = ("ready_s", "handled_s", "rss_mb", "restart_ready_s", "restart_rss_mb")
    return {str(p): {k: statistics.median(r[k] for r in runs if r["partitions"] == p) for k in keys}
            for p in counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[4, 16], help="partition counts")
    ap.add_argument("--repeats", type=int, default=2, help="runs per count (alternating)")
    ap.add_argument("--items", type=int, default=200, help="catalogue size")
    ap.add_argument("--users", type=int, default=40, help="users in the backlog")
    ap.add_argument("--per-user", type=int, default=5, help="engagements per user")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="longest wait per start")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-partitions-") as tmp, EmbeddedBroker() as broker:
        ckpt = write_tiny_checkpoint(Path(tmp) / "ckpt", "tiny-bench")
        for rep in range(args.repeats):
            for p in args.counts:
                root = Path(tmp) / f"p{p}-r{rep}"
                root.mkdir()
                runs.append(one_run(broker.bootstrap, p, ckpt, root, args.items, args.users,
                                    args.per_user, args.timeout_s))
                print(json.dumps(runs[-1]))
    out = {"command": "python bench/bench_partitions_start.py " + " ".join(
               f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
               for k, v in vars(args).items() if k != "json" and v is not None),
           "broker": "tansu (bundled), one broker", "model": "tiny (model/training/tiny.py)",
           "worker_flags": FLAGS, "runs": runs, "median": summary(runs, args.counts)}
    print(json.dumps(out["median"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
