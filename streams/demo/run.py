"""`threadrec demo`: the bundled broker, a real worker, the held-out period replayed, a report.

Steps: prepare data -> quick checkpoint (cached) -> broker + topics -> warm users' states into
the worker's changelog -> `threadrec worker` subprocess -> items -> engagements at --rate ->
read recommendations back live -> report. Everything started is stopped in `finally`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from model.records import write_jsonl
from streams.demo.collect import Collector, stage_histograms
from streams.demo.data import HeldOut, held_out, holdout_of
from streams.demo.learning import add_learning, start_trainer
from streams.demo.options import DemoOptions as DemoOptions  # its home is options.py (light)
from streams.demo.report import Report, match
from streams.demo.view import live_view
from streams.errors import ThreadrecError
from streams.kafka.broker import free_port
from streams.kafka.processes import stop_process
from streams.kafka.replay import ensure_topic_set
from streams.kafka.settings import KafkaSettings
from streams.worker.process import WorkerFailed, WorkerProcess, start_replay

logger = logging.getLogger(__name__)


class DemoError(ThreadrecError):
    """The demo could not finish; the message says why in one line."""


def prepare(opts: DemoOptions, console: Console) -> tuple[Path, HeldOut, Path]:
    """Data dir, held-out period and checkpoint (training the quick one when needed)."""
    from streams.demo.checkpoint import quick_checkpoint

    if opts.data is None:
        from streams.data import ensure_movielens

        with console.status("preparing MovieLens-100K into data/movielens"):
            data = ensure_movielens(Path("data/movielens"))
    else:
        data = Path(opts.data)
        if not (data / "engagements.jsonl").is_file():
            raise DemoError(f"{data} is not a prepared data directory (no engagements.jsonl)")
    ho = held_out(data, opts.holdout or holdout_of(data), opts.events)
    users = len({e["user_id"] for e in ho.replay})
    console.print(f"held-out period from ts {ho.cut_ts:.0f}: replaying {len(ho.replay):,} engagements "
                  f"of {users} users; {len(ho.history)} of them have earlier history "
                  f"({sum(map(len, ho.history.values())):,} engagements) to warm their state")
    if opts.checkpoint is not None:
        if not (Path(opts.checkpoint) / "config.json").is_file():
            raise DemoError(f"{opts.checkpoint} is not a checkpoint directory (no config.json)")
        return data, ho, Path(opts.checkpoint)
    console.print(f"quick checkpoint (<= {opts.quick_minutes:g} min of training, cached) ...")
    ckpt, trained = quick_checkpoint(data, ho.cut_ts, opts.quick_minutes)
    console.print(f"{'trained' if trained else 'reusing'} quick checkpoint {ckpt}")
    return data, ho, ckpt


def worker_flags(opts: DemoOptions) -> dict:
    return dict(refresh=opts.refresh, summary_lane=opts.summary_lane, batch_size=opts.batch_size,
                device=opts.device, inference=opts.inference,
                torch_threads=opts.torch_threads,
                batch_within_s=opts.batch_within_s, metrics_port=opts.metrics_port or free_port())


def warm(k: KafkaSettings, opts: DemoOptions, ckpt: Path, ho: HeldOut, console: Console) -> int:
    """Build the replayed users' states from their earlier history; publish to the changelog."""
    from model.inference import EmbSumInference
    from streams.demo.warm import publish_states, warm_states
    from streams.worker.config import WorkerSettings

    with console.status(f"warming {len(ho.history)} users from their earlier history"):
        t0 = time.perf_counter()
        ws = WorkerSettings(kafka=k, **{f: v for f, v in worker_flags(opts).items() if v is not None})
        model = EmbSumInference.from_checkpoint(ckpt, opts.device, ws.inference)  # the worker's numerics
        # bulk warm-up generates every summary itself (no lane runs here)
        cfg = dataclasses.replace(ws.engine_config(model.config, "warm"), summary_lane=False)
        states = warm_states(model, cfg, ho.items, ho.history)
        n = publish_states(k, states)
    console.print(f"warm state of {n} users written to the worker's changelog "
                  f"({time.perf_counter() - t0:.1f}s)")
    return n


def load_items(k: KafkaSettings, worker: WorkerProcess, data: Path, n_items: int,
               console: Console) -> None:
    """Send the catalogue; wait until the worker has its partitions, its tables and every item."""
    from streams.kafka.replay import replay_to_broker

    replay_to_broker([data / "items.jsonl"], k, progress=False)
    with console.status(f"worker: starting, restoring state, encoding {n_items:,} items"):
        t0 = time.perf_counter()
        worker.wait_until(lambda s: s["ready"] and s["items_upserted"] + s["bad_items"] >= n_items,
                          600, "ready with all items")
    console.print(f"worker ready with {n_items:,} items ({time.perf_counter() - t0:.1f}s)")


def run_demo(opts: DemoOptions, console: Console | None = None) -> Report:
    """The whole demo; raises DemoError (one line) when something fails."""
    console = console or Console()
    data, ho, ckpt = prepare(opts, console)
    if not ho.replay:
        raise DemoError("nothing to replay (--events 0?)")
    opts.workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        run_dir = Path(tempfile.mkdtemp(prefix="demo-", dir=opts.workdir))
        stack.callback(shutil.rmtree, run_dir, True)
        k = _broker(opts, stack, console)
        ensure_topic_set(k)
        warm(k, opts, ckpt, ho, console)
        collector = Collector(k)
        collector.start()
        stack.callback(collector.stop)
        flags = worker_flags(opts)
        worker = WorkerProcess(k, ckpt, run_dir / "worker", opts.workdir / "worker.log",
                               **flags).start()
        stack.callback(worker.stop)
        console.print(f"worker metrics (Prometheus): http://127.0.0.1:{flags['metrics_port']}/metrics")
        trainer = start_trainer(k, opts, ckpt, ho, run_dir, console)
        if trainer is not None:
            stack.callback(trainer.stop)
        try:
            load_items(k, worker, data, len(ho.items), console)
            report = _replay_and_watch(k, opts, ho, run_dir, worker, collector, console)
            report.extra["stage_seconds"] = stage_histograms(flags["metrics_port"])  # per batch
            add_learning(report, ho, trainer, opts.curve_chunks)
        except WorkerFailed as e:
            raise DemoError(str(e)) from e
    return report


def _broker(opts: DemoOptions, stack: ExitStack, console: Console) -> KafkaSettings:
    prefix = f"demo-{uuid.uuid4().hex[:8]}-"
    if opts.bootstrap:
        return KafkaSettings(bootstrap=opts.bootstrap, broker_kind=opts.broker_kind,
                             topic_prefix=prefix, partitions=opts.partitions)
    from streams.kafka.broker import EmbeddedBroker

    broker = stack.enter_context(EmbeddedBroker())
    console.print(f"bundled broker (tansu) on {broker.bootstrap}")
    return KafkaSettings(bootstrap=broker.bootstrap, broker_kind="tansu", topic_prefix=prefix,
                         partitions=opts.partitions)


def _replay_and_watch(k: KafkaSettings, opts: DemoOptions, ho: HeldOut, run_dir: Path,
                      worker: WorkerProcess, collector: Collector, console: Console) -> Report:
    """Replay the engagements (`threadrec replay`); show recommendations as they arrive; report."""
    path = run_dir / "replay.jsonl"
    write_jsonl(path, ho.replay)
    before = worker.stats() or {}
    t0 = time.time()
    replay = start_replay(k, path, opts.rate, opts.workdir / "replay.log")
    featured = [u for u, _ in Counter(e["user_id"] for e in ho.replay).most_common(opts.featured)]
    watch = Watch(len(ho.replay), opts.stall_s, opts.workdir / "replay.log")
    try:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while not watch.check(replay, collector, worker):
                if opts.live:
                    live.update(live_view(match(collector.data), featured, ho.items, watch.status))
                time.sleep(0.5)
            if opts.live:
                live.update(live_view(match(collector.data), featured, ho.items, watch.status))
    finally:
        stop_process(replay)
    report = _report(collector, worker, before, t0)
    report.extra["online_popularity"] = ho.popularity_online()
    return report


@dataclass
class Watch:
    """Decides when the run is complete, or stuck; keeps a one-line status."""

    expected: int
    stall_s: float
    replay_log: Path
    status: str = "starting the replay"
    _last: int = -1
    _since: float = 0.0

    def check(self, replay: subprocess.Popen, collector: Collector, worker: WorkerProcess) -> bool:
        """True when every replayed engagement got its output; DemoError when stuck."""
        sent = replay.poll() == 0
        if replay.returncode not in (None, 0):
            raise DemoError(f"replay exited with code {replay.returncode} (log: {self.replay_log})")
        if collector.error is not None:
            raise DemoError(f"reading the topics failed: {collector.error}")
        worker.check_alive()
        n_in, n_rec, n_dead = collector.data.counts()
        self.status = (f"engagements in {n_in:,}/{self.expected:,} | recommendations out {n_rec:,}"
                       f" | dead-lettered {n_dead:,}")
        total = n_in + n_rec + n_dead
        now = time.monotonic()
        if total != self._last:
            self._last, self._since = total, now
        elif sent and now - self._since > self.stall_s:
            raise DemoError(f"no output for {self.stall_s:.0f}s: {self.status} (log: {worker.log})")
        return sent and n_in >= self.expected and n_rec + n_dead >= self.expected


def _report(collector: Collector, worker: WorkerProcess, before: dict, t0: float) -> Report:
    """The report from what was read back, plus the worker's counters for this replay."""
    time.sleep(1.0)  # one more stats write after the last batch (written every 0.5 s)
    judged = match(collector.data)
    with collector.data.lock:
        last = max((r.arrival_ts for r in collector.data.recommendations), default=time.time())
        # from the first engagement produced, not from starting the replay (its start-up is not load)
        first = max(t0, min(collector.data.produce_ts.values(), default=t0))
        n_in = len(collector.data.engagements)  # read back from the topic
        n_rec, n_dead = len(collector.data.recommendations), len(collector.data.deadletters)
        reasons = Counter(d.get("error", "").split(":")[0] for d in collector.data.deadletters)
    after = worker.stats() or {}
    counters = ("events", "batches", "summaries", "sessions_encoded", "sessions_recomputed",
                "fallbacks", "model_s", "store_s", "index_s", "agent_s")
    diff = {c: after.get(c, 0) - before.get(c, 0) for c in counters}
    params = {k: v for k, v in after.items() if k.startswith("param_")}  # sync from the trainer
    lane = {k: v for k, v in after.items() if k.startswith("lane_")}  # summaries off the path
    return Report(n_in, n_rec, n_dead, [j.latency_s for j in judged], last - first, judged,
                  extra={"worker": diff, "deadletter_reasons": dict(reasons), "parameters": params,
                         "summary_lane": lane})
