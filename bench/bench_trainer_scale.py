"""One question: does the online trainer's cost per engagement, and the size of a sync, stay put
as the catalogue grows from 10k to 1M rows?

Trainer alone, no broker: the trainer's per-event class (streams/trainer/learner.py:
OnlineLearner) over an ID table of N rows in rocksdict (the trainer's own store and row cache
defaults), fed the synthetic production feed (streams/data/production_feed.py, what `threadrec
data synth` writes) over N items, block by block (`learn_block` engagements, one step each, as
the trainer's loop hands them over). Per size:

- trainer_events_per_s: engagements learned per wall second over the timed engagements (after a
  warm-up that fills the users' histories and the row cache), and the process CPU time per
  engagement, split into the tower's step (model/ids/online.py: batch_row_step, timed through a
  wrapper the bench installs: one forward and backward of the frozen tower per block, the same at
  every size) and the rest (sampling, row bookkeeping, Adagrad: what a catalogue could make grow). On shared cores
  the tower's share swings with the load; the rest is the steadier comparison across sizes;
- sync_rows / sync_bytes: what one sync publishes (streams/trainer/publisher.py: the publish
  rule's rows, vectors without slots, key + value bytes) after the timed engagements, which stand
  for one sync interval at the stated engagement rate (--rate x --sync-s engagements); the rows
  the interval touched and the negatives held back beside them.

- apply_us_per_row / p99_during_sync_ratio: a worker's ID half over the same rows applies that
  sync in slices, serving between them (worker_apply below), on fresh halves until 600 slices
  are pooled (apply_passes);
- start_full_disk_s / start_empty_disk_s: until a worker's ID half over N rows can serve, from
  its local rows or from the checkpoint plus the whole compacted topic (worker_starts below).
Usage: python bench/bench_trainer_scale.py --sizes 10000 100000 1000000   (quick: --sizes 10000 --rate 100)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# as `threadrec trainer` sets it (streams/cli/trainer.py), before torch loads its OpenMP runtime
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import streams.trainer.learner as learner_module
from model.ids.hybrid import Fusion, HybridConfig
from model.ids.sasrec import SASRec, SASRecOptions
from store import IdMemory, IdRow, encode_row, row_key
from store.rocksdict_backend import RocksDictKV
from streams.data.production_feed import KINDS, FeedConfig, make_catalogue, make_events
from streams.engine.id_half import IdHalf
from streams.engine.pacer import ApplyPacer
from streams.engine.parameters import apply_parameters, prepare_parameters
from streams.trainer import snapshot
from streams.trainer.config import TrainerSettings
from streams.trainer.histories import Histories
from streams.trainer.learner import OnlineLearner, memory_config
from streams.trainer.publisher import Publisher
from streams.worker.config import WorkerSettings
from streams.worker.heap import freeze_startup_objects
from streams.worker.id_rows import replica_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "trainer_scale.json"
MIN_APPLY_SLICES = 600  # slices pooled for the p99 during a sync (its 6th largest)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--losses", nargs="+", choices=("sampled", "full"), default=["sampled"])
    p.add_argument("--rate", type=float, default=1000.0, help="engagements/s one sync interval stands for")
    p.add_argument("--sync-s", type=float, default=60.0, help="the sync interval (s)")
    p.add_argument("--syncs", type=int, default=3,
                   help="sync intervals timed; the worker applies their syncs one after another (more slices "
                        "for the p99 during a sync)")
    p.add_argument("--warmup", type=int, default=2000, help="engagements learned before timing")
    p.add_argument("--users", type=int, default=20_000, help="users of the synthetic feed")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--id-dim", type=int, default=SASRecOptions().dim, help="ID row width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-starts", dest="starts", action="store_false", help="skip the worker start timings")
    p.add_argument("--no-snapshots", dest="snapshots", action="store_false", help="skip the trainer snapshot timings")
    p.add_argument("--json", dest="json_out", type=Path, default=DEFAULT_JSON)
    p.add_argument("--in-process", action="store_true", help="every size in this process (default: one process each)")
    return p.parse_args()


def feed_events(n_items: int, count: int, users: int, seed: int) -> list[tuple[dict, int, int]]:
    """The feed's first `count` engagements over n_items, as (event, partition 0, offset)."""
    cfg = FeedConfig(items=n_items, users=users, seed=seed)
    ev, _ = make_events(cfg, make_catalogue(cfg))
    if len(ev.user) < count:
        raise SystemExit(f"the feed has {len(ev.user)} engagements, {count} wanted: raise --users")
    return [({"user_id": f"u{u}", "item_id": f"i{i}", "ts": t, "kind": KINDS[k]}, 0, off)
            for off, (u, i, t, k) in enumerate(zip(ev.user[:count].tolist(), ev.item[:count].tolist(),
                                                   ev.ts[:count].tolist(), ev.kind[:count].tolist(),
                                                   strict=True))]


def initial_rows(n: int, dim: int, seed: int):
    """The checkpoint's n rows, in chunks of (ids, vectors): the trainer and the worker start alike."""
    rng = np.random.default_rng((seed, n, dim))
    for start in range(0, n, 65_536):
        vectors = rng.standard_normal((min(65_536, n - start), dim), dtype=np.float32) * 0.1
        yield [f"i{k}" for k in range(start, start + len(vectors))], vectors


def build_learner(n: int, settings: TrainerSettings, dim: int, root: Path, seed: int) -> tuple[OnlineLearner, float]:
    """(a learner over n random rows in rocksdict, seconds to write them), as the trainer starts
    from a checkpoint: the checkpoint's rows with fresh slots, not reported as touched."""
    torch.manual_seed(seed)
    tower = SASRec([], SASRecOptions(dim=dim)).eval()  # reads rows, holds none
    memory = IdMemory(RocksDictKV(root / "rows", point_reads=True), memory_config(settings, dim, HybridConfig()))
    acc = np.full(dim, memory.config.initial_accumulator, np.float32)
    t = time.perf_counter()
    for ids, vectors in initial_rows(n, dim, seed):
        memory.put_rows(ids, [IdRow(v, acc.copy()) for v in vectors])
    memory.flush()
    memory.drain_touched()
    built = time.perf_counter() - t
    histories = Histories(memory.kv, tower.opts.max_len, settings.impressions_kept)  # as the trainer keeps them
    return OnlineLearner(memory, tower, histories, settings, Fusion(dim).eval()), built


def worker_rows(learner: OnlineLearner, root: Path, seed: int) -> IdHalf:
    """A worker's ID half over the checkpoint's rows in rocksdict under root, as a worker's
    local ID rows hold them (streams/worker/id_rows.py), sharing the learner's tower and gate."""
    n, dim = len(learner.memory), learner.memory.config.dim
    memory = IdMemory(RocksDictKV(root, point_reads=True), replica_config(dim))
    zeros = np.zeros(dim, np.float32)
    for ids, vectors in initial_rows(n, dim, seed):
        memory.put_rows(ids, [IdRow(v, zeros) for v in vectors])
    memory.flush()
    return IdHalf(memory, learner.tower, learner.fusion if learner.fusion is not None else Fusion(dim).eval())


def worker_apply(half: IdHalf, records: list[tuple[bytes, bytes | None]], users: list[list[str]],
                 samples: dict[str, Any] | None = None) -> dict[str, Any]:
    """The worker's ID half (index and row sample built) applies the sync in slices as the
    worker's runtime does: each slice prepared off the lock on a thread of its own (decode, gates,
    the ID index's plan) while one engagement is served, then applied under the lock, sized by
    ApplyPacer (param_apply_share of an engagement's time, here one serve's, at most
    param_apply_budget_ms per hold of the lock, the rate floor param_apply_min_per_s).
    apply_us_per_row: the time under the lock over the rows (wall; the thread's CPU time in
    apply_cpu_us_per_row); prepare_*: the same off the lock; p99_during_sync_ratio: p99 of (one
    hold + one serve), an engagement that arrived as a hold began and waited for the lock, over
    the p99 of serves without a sync, one taken just before each slice; p99_beside_prepare_ratio:
    serves while a prepare ran beside them, over the same. samples: those of earlier passes over the
    same records on fresh halves, pooled with this one's (new_samples())."""
    t = time.perf_counter()
    half.index(), half.sample()
    index_s = time.perf_counter() - t
    # as a worker does once it serves (streams/worker/heap.py): what is alive now (here the
    # trainer's objects too, which a worker would not hold) is kept out of the collector's scans
    freeze_startup_objects()

    def serve(k: int) -> float:
        t = time.perf_counter()
        h = half.user_vectors([users[k % len(users)]])
        half.terms(h, half.retrieve(h, 50, [set()]))
        return time.perf_counter() - t

    def prepare(part: list[tuple[bytes, bytes | None]]) -> tuple[Any, float, float]:
        t, cpu = time.perf_counter(), time.thread_time()
        prepared = prepare_parameters(half, part)
        return prepared, time.perf_counter() - t, time.thread_time() - cpu

    serve(0)
    settings = WorkerSettings()
    samples = new_samples() if samples is None else samples
    # one pacer over the passes, as a worker's runs over its syncs (a fresh one sizes its first slices blind)
    pacer = samples.setdefault("pacer", ApplyPacer(settings.param_apply_budget_ms / 1000.0, settings.param_apply_slice,
                                                   settings.param_apply_share, min_per_s=settings.param_apply_min_per_s))
    held, during, quiet, beside, sizes = (samples[k] for k in ("held", "during", "quiet", "beside", "sizes"))
    start, held["rows"] = 0, held["rows"] + len(records)
    with ThreadPoolExecutor(1, thread_name_prefix="param-prepare") as pool:
        while start < len(records):
            quiet.append(serve(len(quiet)))  # paired with the slice below: the same moment's load on the cores
            pacer.served(quiet[-1])  # as the worker's engagement batches do
            part = records[start:start + pacer.next()]
            ahead = pool.submit(prepare, part)
            beside.append(serve(len(quiet)))
            prepared, prep_s, prep_cpu = ahead.result()
            t, cpu = time.perf_counter(), time.thread_time()
            apply_parameters(half, part, prepared=prepared)
            took = time.perf_counter() - t
            _add(held, s=took, cpu=time.thread_time() - cpu, prep_s=prep_s, prep_cpu=prep_cpu)
            pacer.took(len(part), took)
            start += len(part)
            sizes.append(len(part))
            during.append(took + serve(len(quiet) - 1))
    return _apply_row(held, int(held["rows"]), quiet, during, beside, sizes) | {
        "worker_index_build_s": index_s, "apply_budget_ms": settings.param_apply_budget_ms,
        "apply_share": settings.param_apply_share, "apply_slice_max": settings.param_apply_slice,
        "apply_min_per_s": settings.param_apply_min_per_s}


def new_samples() -> dict[str, Any]:
    """worker_apply's samples, empty: times under and off the lock, the serves, the slices."""
    return {"held": {"s": 0.0, "cpu": 0.0, "prep_s": 0.0, "prep_cpu": 0.0, "rows": 0.0},
            "during": [], "quiet": [], "beside": [], "sizes": []}


def _add(totals: dict[str, float], **more: float) -> None:
    for k, v in more.items():
        totals[k] += v


def _apply_row(held: dict[str, float], rows: int, quiet: list[float], during: list[float],
               beside: list[float], sizes: list[int]) -> dict[str, Any]:
    """worker_apply's measures (per row in us; p99s in ms and as ratios to the quiet p99)."""
    per_row = 1e6 / max(rows, 1)
    p99 = float(np.percentile(quiet, 99)) if quiet else float("nan")
    p99_during = float(np.percentile(during, 99)) if during else None
    p99_beside = float(np.percentile(beside, 99)) if beside else None
    return {"apply_us_per_row": held["s"] * per_row, "apply_cpu_us_per_row": held["cpu"] * per_row,
            "prepare_us_per_row": held["prep_s"] * per_row, "prepare_cpu_us_per_row": held["prep_cpu"] * per_row,
            "p99_during_sync_ratio": None if p99_during is None else p99_during / p99,
            "p99_beside_prepare_ratio": None if p99_beside is None else p99_beside / p99,
            "worker_serve_p99_ms": 1e3 * p99,
            "worker_serve_p99_during_sync_ms": None if p99_during is None else 1e3 * p99_during,
            "apply_slices": len(sizes), "apply_slice_median": float(np.median(sizes)) if sizes else None}


def apply_passes(learner: OnlineLearner, records: list[tuple[bytes, bytes | None]], users: list[list[str]],
                 root: Path, seed: int) -> dict[str, Any]:
    """worker_apply on fresh worker halves until MIN_APPLY_SLICES slices are pooled: a 10k-row
    sync is about 80 slices, whose p99 is their largest (1.05-1.94x in four runs of one day)."""
    samples, passes = new_samples(), 0
    while not passes or len(samples["during"]) < MIN_APPLY_SLICES:
        half = worker_rows(learner, root / f"worker-{passes}", seed)
        worker = worker_apply(half, records, users, samples)
        half.memory.close()
        shutil.rmtree(root / f"worker-{passes}", ignore_errors=True)
        passes += 1
    return worker | {"apply_passes": passes}


def worker_starts(learner: OnlineLearner, root: Path, seed: int) -> dict[str, Any]:
    """Seconds until a worker's ID half can serve (rows open, index and row sample built), the
    model's load and the broker's reads aside. Full disk: the local rows a worker left (N rows),
    reopened. Empty disk: the checkpoint's rows written, then the whole compacted `parameters`
    topic applied record by record (one record per row: every row published since the
    checkpoint, the worst case), in the replica's chunks of 512."""
    full = root / "full"
    worker_rows(learner, full, seed).memory.close()
    t = time.perf_counter()
    dim = learner.memory.config.dim
    half = IdHalf(IdMemory(RocksDictKV(full, point_reads=True), replica_config(dim)), learner.tower,
                  learner.fusion if learner.fusion is not None else Fusion(dim).eval())
    half.index(), half.sample()
    full_s = time.perf_counter() - t
    half.memory.close()
    t = time.perf_counter()
    empty = worker_rows(learner, root / "empty", seed)
    rows_s = time.perf_counter() - t
    for ids, vectors in initial_rows(len(learner.memory), dim, seed + 1):  # the topic's records
        records = [(row_key("item", i), encode_row("item", i, IdRow(v, np.zeros(dim, np.float32), version=1),
                                                   served=True)) for i, v in zip(ids, vectors, strict=True)]
        t0 = time.perf_counter()
        for start in range(0, len(records), 512):
            apply_parameters(empty, records[start:start + 512])
        rows_s += time.perf_counter() - t0
    t = time.perf_counter()
    empty.index(), empty.sample()
    empty_s = rows_s + time.perf_counter() - t
    empty.memory.close()
    return {"start_full_disk_s": full_s, "start_empty_disk_s": empty_s}


def trainer_snapshots(learner: OnlineLearner, root: Path) -> dict[str, Any]:
    """Seconds of the trainer's snapshot (a RocksDB checkpoint of rows and histories: training
    waits for it) and of its restore, beside the whole-file snapshot it replaced (format 1)."""
    memory, meta = learner.memory, snapshot.SnapshotMeta()
    t = time.perf_counter()
    snap = snapshot.write(root / "snapshots", memory.kv, memory, meta)
    checkpoint_s = time.perf_counter() - t
    t = time.perf_counter()
    memory.snapshot(root / "whole" / "rows.snap")
    learner.histories.snapshot(root / "whole" / "histories.jsonl")
    whole_s = time.perf_counter() - t
    t = time.perf_counter()
    back, _, _ = snapshot.restore(snap, root / "restored", memory.config, lambda kv: Histories(kv, 1, 0))
    restore_s = time.perf_counter() - t
    back.kv.close()
    return {"trainer_snapshot_s": checkpoint_s, "trainer_snapshot_whole_s": whole_s,
            "trainer_restore_s": restore_s}


class TowerClock:
    """Wraps the learner's batch_row_step and sums the process CPU time spent in it."""

    def __init__(self) -> None:
        self.step, self.cpu_s = learner_module.batch_row_step, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        try:
            return self.step(*args, **kwargs)
        finally:
            self.cpu_s += time.process_time() - t


def learn(learner: OnlineLearner, events: list[tuple[dict, int, int]]) -> None:
    """Block by block, as the trainer's loop hands them over (offsets from 0: aligned)."""
    block = learner.settings.learn_block
    for k in range(0, len(events), block):
        learner.learn_all(events[k:k + block])


def bench_size(n: int, loss: str, args: argparse.Namespace) -> dict[str, Any]:
    """One size and loss: build, warm up, time --syncs sync intervals' engagements, publishing
    after each; the worker applies those syncs in order. sync_*: the largest of them."""
    timed = int(round(args.rate * args.sync_s))
    events = feed_events(n, args.warmup + timed * args.syncs, args.users, args.seed)
    settings = TrainerSettings(loss=loss, seed=args.seed, torch_threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="trainer-scale-") as tmp:
        learner, built = build_learner(n, settings, args.id_dim, Path(tmp), args.seed)
        publisher = Publisher(None, "parameters", learner.memory, Path(tmp) / "hw", learner.publish_rule)
        learn(learner, events[:args.warmup])
        publisher.records()  # the warm-up's sync: the timed interval starts clean
        steps, candidates = learner.stats.steps, learner.stats.candidates
        run = timed_syncs(learner, publisher, events[args.warmup:], timed)
        snaps = trainer_snapshots(learner, Path(tmp) / "trainer") if args.snapshots else {}
        steps, candidates = learner.stats.steps - steps, learner.stats.candidates - candidates
        users = [h for e, _, _ in events[-300:] if (h := learner.histories.get(e["user_id"]).items)]
        worker = apply_passes(learner, [r for sync in run["syncs"] for r in sync], users, Path(tmp), args.seed)
        worker.update(worker_starts(learner, Path(tmp) / "starts", args.seed) if args.starts else
                      {"start_full_disk_s": None, "start_empty_disk_s": None})
        learner.memory.close()
    total, biggest = timed * args.syncs, max(run["syncs"], key=_bytes)
    return {"rows": n, "loss": loss, "trainer_events_per_s": total / run["wall"],
            "trainer_cpu_us_per_event": 1e6 * run["cpu"] / total,
            "tower_cpu_us_per_event": 1e6 * run["tower_cpu"] / total,
            "rest_cpu_us_per_event": 1e6 * (run["cpu"] - run["tower_cpu"]) / total, "timed_engagements": total,
            "steps": steps, "mean_candidates": candidates / steps if steps else None,
            "sync_rows": sum(v is not None for _, v in biggest), "sync_bytes": _bytes(biggest),
            "syncs": args.syncs, "sync_bytes_each": [_bytes(s) for s in run["syncs"]],
            "sync_touched_rows": publisher.last["touched"], "sync_held_back": publisher.last["held_back"],
            "sync_select_encode_s": max(run["encode_s"]), "engagement_rate_per_s": args.rate,
            "sync_interval_s": args.sync_s, "build_rows_s": built, "rss_mb": _rss_mb(), **snaps, **worker}


def timed_syncs(learner: OnlineLearner, publisher: Publisher, events: list, per_sync: int) -> dict[str, Any]:
    """Learn the events one sync interval (per_sync engagements) at a time, publishing after
    each: the syncs' records, the learning's wall and CPU seconds (the tower's apart) and each
    publish's select + encode seconds (not in the learning's)."""
    clock = learner_module.batch_row_step = TowerClock()
    out: dict[str, Any] = {"syncs": [], "encode_s": [], "wall": 0.0, "cpu": 0.0}
    try:
        for k in range(0, len(events), per_sync):
            wall, cpu = time.perf_counter(), time.process_time()
            learn(learner, events[k:k + per_sync])
            out["wall"] += time.perf_counter() - wall
            out["cpu"] += time.process_time() - cpu
            t = time.perf_counter()
            out["syncs"].append(publisher.records())
            out["encode_s"].append(time.perf_counter() - t)
    finally:
        learner_module.batch_row_step = clock.step
    out["tower_cpu"] = clock.cpu_s
    return out


def _bytes(records: list[tuple[bytes, bytes | None]]) -> int:
    return sum(len(k) + len(v or b"") for k, v in records)


def _shown(value: Any) -> Any:
    """A path relative to the repository where it lies inside it (the JSON is committed)."""
    if not isinstance(value, Path):
        return value
    return str(value.resolve().relative_to(ROOT)) if value.resolve().is_relative_to(ROOT) else str(value)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    t = Table(title="online trainer alone (synthetic feed)")
    for col in ("rows", "loss", "events/s", "CPU us/event", "tower", "rest", "candidates", "sync rows",
                "sync MB", "touched", "held back"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(f"{r['rows']:,}", r["loss"], f"{r['trainer_events_per_s']:.0f}",
                  f"{r['trainer_cpu_us_per_event']:.0f}", f"{r['tower_cpu_us_per_event']:.0f}",
                  f"{r['rest_cpu_us_per_event']:.0f}", f"{r['mean_candidates'] or 0:.0f}",
                  f"{r['sync_rows']:,}", f"{r['sync_bytes'] / 1e6:.2f}", f"{r['sync_touched_rows']:,}",
                  f"{r['sync_held_back']:,}")
    console.print(t)


def size_apart(n: int, loss: str, args: argparse.Namespace) -> dict[str, Any]:
    """bench_size in a process of its own, as a deployment runs one size: sizes measured one after
    another in one process left a fragmented heap to the next (the 1M-row apply measured 5.3 us
    a row after the 10k and 100k sizes, 3.5 alone)."""
    with tempfile.TemporaryDirectory(prefix="trainer-scale-size-") as tmp:
        out = Path(tmp) / "row.json"
        argv = [sys.executable, __file__, "--in-process", "--sizes", str(n), "--losses", loss, "--json", str(out)]
        for flag in ("rate", "sync_s", "syncs", "warmup", "users", "threads", "id_dim", "seed"):
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        argv += [] if args.starts else ["--no-starts"]
        argv += [] if args.snapshots else ["--no-snapshots"]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())["rows"][0]


def main() -> None:
    args = parse_args()
    load_at_start = os.getloadavg()  # other processes share the cores: say how busy they were
    torch.set_num_threads(args.threads)
    console = Console(stderr=True, width=140)
    rows = []
    for n in args.sizes:
        for loss in args.losses:
            console.print(f"{n:,} rows, {loss} loss ...")
            rows.append(bench_size(n, loss, args) if args.in_process else size_apart(n, loss, args))
    defaults = TrainerSettings()
    result = {
        "question": "does the trainer's cost per engagement and a sync's size stay put as rows grow?",
        "level": "trainer alone (OnlineLearner over rocksdict rows), no broker",
        "feed": "streams/data/production_feed.py (threadrec data synth), its first warm-up + timed engagements",
        "start_measures": ("the ID half only: rows opened (full disk) or the checkpoint's written and the "
                           "whole compacted parameters topic applied from memory (empty disk), then the ID "
                           "index and row sample built; the model's load and the broker's reads aside"),
        "config": {**{k: _shown(v) for k, v in vars(args).items()},
                   "negatives": defaults.negatives, "learn_block": defaults.learn_block,
                   "publish_threshold": defaults.publish_threshold},
        "machine": {"cpu_count": os.cpu_count(), "load_avg_start": load_at_start, "load_avg": os.getloadavg(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "rows": rows,
    }
    print_table(rows, console)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
