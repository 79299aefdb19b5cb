"""The pipeline level of bench/bench_scale.py: the same question through the bundled broker and a
real `threadrec worker` subprocess (default flags, one torch thread as in the demo).

Per size: the synthetic production feed is written (streams/data/production_feed.py), then bulk
loaded (streams/data/bulk_load.py: items, item vectors from a stated generator with the
checkpoint's encoder fingerprint, the items group committed, warm states of every user on the
changelog); a worker starts on an EMPTY data dir (restore_s: table recovery done, and
catalogue_ready_s: item-vectors replica caught up, both from its start, from its stats file);
held-out engagements of the warm users are replayed as fast as possible (saturation) and at 25/s
(p50/p99 engagement produced -> recommendation consumed); changelog bytes per engagement are the
changelog's growth over those replays; then as many new item vectors as the catalogue holds are
published during another 25/s replay (the catalogue doubles and the index retrains aside), and the
p99 of the engagements produced until the worker holds them all is compared with the plain 25/s p99.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench-scale"
RECALL_K = 100
# rows of one invocation share it; a saturation ratio compares rows of one run only (the CPU
# differs between machines: the same code ran 10k items at 87.5/s on one and 51.5/s on another)
RUN = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
NEW_BLOCKS = 1_000_000  # vector blocks of the doubling's items start here (the catalogue's at 0)


class RanOut(Exception):
    """A resource ran out (memory, the size's time budget); the message names it and where."""


@dataclass
class Budget:
    """A size's deadline and the memory floor the machine must keep."""

    deadline: float
    min_available_gb: float
    where: str = "start"

    def check(self, where: str | None = None) -> None:
        self.where = where or self.where
        if time.monotonic() > self.deadline:
            raise RanOut(f"time budget during {self.where}")
        avail = available_gb()
        if avail < self.min_available_gb:
            raise RanOut(f"memory during {self.where} ({avail:.1f} GiB available)")


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) / 2**20
    return float("inf")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot (/proc/stat): their ratio over an
    interval is how loaded the machine was."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def proc_mb(pid: int, field_name: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# ---- inputs ------------------------------------------------------------------------------------

def scale_checkpoint(console) -> Path:
    """A checkpoint of the demo's quick-checkpoint architecture (streams/demo/checkpoint.py
    QUICK_MODEL: the one the MovieLens speed numbers ran) with untrained, seeded heads, written
    once: the bench measures cost, not quality, and needs a fixed encoder fingerprint."""
    path = WORK / "checkpoint-quick-arch"
    if (path / "config.json").is_file():
        return path
    from model.checkpoint import save_checkpoint
    from model.config import EmbSumConfig
    from model.inference import EmbSumInference
    from streams.demo.checkpoint import QUICK_MODEL

    console.print("writing the scale checkpoint (the demo's architecture, pretrained backbone) ...")
    inf = EmbSumInference.pretrained(EmbSumConfig(**QUICK_MODEL), device="cpu")
    save_checkpoint(path, inf.model, inf.tokenizer, {"version": "scale-quick-arch-untrained"})
    return path


def feed(items: int, users: int, seed: int, console) -> Path:
    """The prepared synthetic feed of this size (written once, reused while its config matches)."""
    from streams.data.production_feed import FeedConfig, write_feed

    cfg = FeedConfig(items=items, users=users, seed=seed)
    out = WORK / f"feed-{items}-{users}-{seed}"
    meta = out / "meta.json"
    if meta.is_file() and json.loads(meta.read_text())["production_feed"]["config"] == cfg.__dict__:
        return out
    write_feed(cfg, out, echo=console.print)
    return out


def new_items_file(data: Path, n: int, seed: int) -> Path:
    """n more items (ids n0.., published at the end of the span), for the catalogue doubling."""
    from streams.data.production_feed import (
        FeedConfig,
        TextMaker,
        item_lines,
        make_catalogue,
        vocabulary,
    )

    out = data / "items_doubling.jsonl"
    if out.is_file():
        return out
    cfg = FeedConfig(items=n, users=1, seed=seed + 1)
    words, _ = vocabulary(cfg.vocabulary_words)
    end = json.loads((data / "meta.json").read_text())["production_feed"]["cut_ts"]["test"]
    with out.open("w") as fh:
        for line in item_lines(cfg, make_catalogue(cfg), TextMaker(words, cfg.categories)):
            it = json.loads(line)
            it.update(item_id="n" + it["item_id"][1:], ts=end)
            fh.write(json.dumps(it) + "\n")
    return out


# ---- reading the topics back -------------------------------------------------------------------

def topic_bytes(bootstrap: str, topic: str, since: dict[int, int] | None = None) -> tuple[dict[int, int], int, int]:
    """(end offsets, bytes of key + value, records) of `topic` past `since` (all when None)."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        ends = {tp.partition: off for tp, off in c.end_offsets(tps).items()}
        if since is None:
            return ends, 0, 0
        c.assign(tps)
        for tp in tps:
            c.seek(tp, since.get(tp.partition, 0))
        size = n = 0
        todo = {p for p in ends if ends[p] > since.get(p, 0)}
        deadline = time.monotonic() + 120
        while todo and time.monotonic() < deadline:
            for tp, recs in c.poll(timeout_ms=500).items():
                for r in recs:
                    if r.offset < ends[tp.partition]:
                        size += len(r.key or b"") + len(r.value or b"")
                        n += 1
                if c.position(tp) >= ends[tp.partition]:
                    todo.discard(tp.partition)
        return ends, size, n
    finally:
        c.close()


@dataclass
class Phase:
    """One replay: its events, when it ran, and what came back."""

    name: str
    events: list[dict]
    t0: float = 0.0
    stats0: dict = field(default_factory=dict)
    stats1: dict = field(default_factory=dict)


def _p99_by(timed: list[tuple[float, float]], step_s: float) -> list[float | None]:
    """p99 latency (ms) of the engagements produced in each step_s bin of a window, in order
    (where in the window a p99 comes from: the vectors' burst, the retrain, its swap)."""
    bins: dict[int, list[float]] = {}
    for t, ms in timed:
        bins.setdefault(int(t // step_s), []).append(ms)
    top = max(bins, default=-1)
    return [round(float(np.percentile(bins[b], 99)), 1) if b in bins else None for b in range(top + 1)]


def judged_of(collector, events: list[dict]) -> list:
    """The matched recommendations of these events (by user and event time)."""
    from streams.demo.report import match

    keys = {(e["user_id"], float(e["ts"])) for e in events}
    return [j for j in match(collector.data) if (j.user_id, j.ts) in keys]


def wait_answered(collector, worker, phase: Phase, budget: Budget, stall_s: float = 180.0,
                  stop: Callable[[list], bool] | None = None) -> list:
    """Poll until every event of the phase has its recommendation (or `stop` says enough)."""
    last, since = -1, time.monotonic()
    while True:
        budget.check(phase.name)
        worker.check_alive()
        got = judged_of(collector, phase.events)
        if len(got) >= len(phase.events) or (stop is not None and stop(got)):
            return got
        if len(got) != last:
            last, since = len(got), time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise RanOut(f"no recommendation for {stall_s:.0f}s during {phase.name} ({len(got)} of "
                         f"{len(phase.events)}; log {worker.log})")
        time.sleep(0.5)


def replay(k, phase: Phase, rate: float | None, run_dir: Path):
    from model.records import write_jsonl
    from streams.worker.process import start_replay

    path = run_dir / f"{phase.name}.jsonl"
    write_jsonl(path, phase.events)
    phase.t0 = time.time()
    return start_replay(k, path, rate, run_dir / f"{phase.name}.log")


# ---- one size ----------------------------------------------------------------------------------

@dataclass
class Size:
    items: int
    users: int
    args: Any
    console: Any
    row: dict = field(default_factory=dict)

    def run(self) -> dict:
        self.row = {"items": self.items, "users": self.users, "run": RUN, "ran_out": None,
                    "vectors": "fitted" if self.args.data == "fitted" else "clustered",
                    "load_avg_at_start": os.getloadavg()[0]}
        budget = Budget(time.monotonic() + 60 * self.args.budget_min, self.args.min_free_gb)
        try:
            self._run(budget)
        except RanOut as e:
            self.row["ran_out"] = str(e)
            self.console.print(f"[red]ran out[/]: {e}")
        except MemoryError:
            self.row["ran_out"] = f"memory (MemoryError) during {budget.where}"
        self.row["load_avg_at_end"] = os.getloadavg()[0]
        return self.row

    def _run(self, budget: Budget) -> None:
        from contextlib import ExitStack

        from streams.demo.collect import Collector
        from streams.kafka.broker import EmbeddedBroker
        from streams.kafka.replay import ensure_topic_set
        from streams.kafka.settings import KafkaSettings

        budget.check("feed")
        t0 = time.perf_counter()
        data = feed(self.items, self.users, self.args.seed, self.console)
        self.row["feed_s"] = time.perf_counter() - t0
        ckpt = scale_checkpoint(self.console)
        with ExitStack() as stack:
            broker = stack.enter_context(EmbeddedBroker())
            k = ensure_topic_set(KafkaSettings(bootstrap=broker.bootstrap, broker_kind="tansu",
                                               topic_prefix="scale-"))
            self.row["partitions"] = k.partitions
            stack.callback(self._broker_rss, broker.bootstrap)  # also when something ran out
            cat, held, maker, model = self._load(k, data, ckpt, budget)
            run_dir = WORK / f"run-{self.items}-{self.users}"
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
            collector = Collector(k)
            collector.start()
            stack.callback(collector.stop)
            worker = self._start_worker(k, ckpt, run_dir, stack, budget)
            self._replays(k, broker.bootstrap, worker, collector, held, run_dir, budget)
            try:  # the last step: what ran out here leaves everything else measured
                self._doubling(k, worker, collector, held, data, maker, run_dir, budget)
            except RanOut as e:
                self.row["ran_out"] = str(e)
                self.console.print(f"[red]ran out[/]: {e}")
            self.row["rss_mb"] = proc_mb(worker.proc.pid, "VmRSS")
            self.row["rss_peak_mb"] = proc_mb(worker.proc.pid, "VmHWM")
            st = worker.stats() or {}
            self.row["sweep_max_block_ms"] = st.get("sweep_max_block_ms")
            # item-vectors slices while serving (the doubling's) and the longest engine call of one
            for key in ("item_slices", "item_hold_max_ms", "item_slice_max"):
                self.row[key] = st.get(key)
            self.row["worker_expired"] = st.get("expired")
        # broker and worker are gone: the recall check gets its own 15 minutes
        Budget(time.monotonic() + 900, self.args.min_free_gb, "recall").check()
        self._recall(cat, held, maker, model)

    def _broker_rss(self, bootstrap: str) -> None:
        """The bundled broker's RSS (memory storage: it holds every topic) before it stops."""
        needle = f"tcp://{bootstrap}".encode()
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if b"tansu" in (raw := cmdline.read_bytes()) and needle in raw:
                    self.row["broker_rss_mb"] = proc_mb(int(cmdline.parent.name), "VmRSS")
                    return
            except OSError:
                continue

    def _load(self, k, data: Path, ckpt: Path, budget: Budget):
        """Bulk load; returns (catalogue, held-out events of warm users, vector maker, model)."""
        from rich.progress import Progress

        from model.inference import EmbSumInference
        from model.sessions import SessionRule
        from store import EncoderFingerprint
        from streams.data.bulk_load import (
            Catalogue,
            Targets,
            VectorMaker,
            histories,
            load_items,
            load_states,
        )
        from streams.worker.config import WorkerSettings

        model = EmbSumInference.from_checkpoint(ckpt, "cpu")
        fp = EncoderFingerprint(model.identity, model.dim, model.config.n)
        ws = WorkerSettings(kafka=k)
        targets = Targets(ws.items_group_id, k.changelog("user-state", ws.app_id), ws.app_id)
        maker = VectorMaker(vector_spec(self.args), fp)
        cat = Catalogue({}, np.zeros((self.items, fp.dim), np.float16), [], [])
        rule = SessionRule.of(model.config)
        with Progress(console=self.console, transient=True) as progress:
            task = progress.add_task("bulk load: items", total=2 * self.items)

            def tick(stage: str, n: int) -> None:
                progress.update(task, completed=n, description=f"bulk load: {stage}")
                budget.check(f"bulk load ({stage})")
            items = load_items(k, data / "items.jsonl", maker, targets, tick, cat)
            self.row.update(bulk_items_s=items["seconds"], item_vectors_bytes=items["bytes"]["item-vectors"])
            hist = histories(data)
            progress.update(task, total=len(hist), completed=0)
            states = load_states(k, hist, cat, rule, ws.engine.max_seen, targets, tick)
        sizes = states.pop("state_bytes")
        self.row.update(state_bytes_p50=pct(sizes, 50), state_bytes_max=max(sizes),
                        warm_users=len(sizes), bulk_states_s=states["seconds"])
        self.console.print(f"bulk load: {self.items:,} items + vectors in {items['seconds']:.0f}s, "
                           f"{len(sizes):,} warm states in {states['seconds']:.0f}s")
        from model.records import read_jsonl

        held = [e for e in read_jsonl(data / "test.jsonl") if e["user_id"] in hist]
        # only the recall check's users are read again: the rest (GBs at 250k users) goes now
        keep = list(dict.fromkeys(e["user_id"] for e in held))[: self.args.recall_users]
        self._hist = {u: hist[u] for u in keep}
        del hist
        self._rule, self._remember = rule, ws.engine.max_seen
        return cat, held, maker, model

    def _start_worker(self, k, ckpt: Path, run_dir: Path, stack, budget: Budget):
        from streams.worker.process import WorkerProcess

        # --loglevel info: the index's rebuild and swap lines time the retrain of the doubling
        worker = WorkerProcess(k, ckpt, run_dir / "worker", run_dir / "worker.log", torch_threads=1,
                               loglevel="info")
        t0 = time.monotonic()
        worker.start()
        stack.callback(worker.stop)
        marks: dict[str, float] = {}
        while "ready" not in marks:
            budget.check("worker start")
            worker.check_alive()
            st = worker.stats() or {}
            for name, key in (("tables_recovered", "restore_s"), ("replicas_current", "catalogue_ready_s"),
                              ("ready", "worker_ready_s")):
                if st.get(name) and name not in marks:
                    marks[name] = self.row[key] = time.monotonic() - t0  # kept if a later step runs out
                    self.console.print(f"worker {name} after {marks[name]:.1f}s")
            time.sleep(0.2)
        st = worker.stats() or {}
        self.row.update(items_encoded_at_start=st.get("items_encoded"),
                        items_upserted_at_start=st.get("items_upserted"))
        return worker

    def _replays(self, k, bootstrap: str, worker, collector, held: list[dict], run_dir: Path,
                 budget: Budget) -> None:
        from streams.kafka.processes import stop_process

        a = self.args
        sat = Phase("saturation", held[:a.saturation_events])
        fixed = Phase("rate25", held[a.saturation_events:a.saturation_events + a.rate_events])
        changelog = k.changelog("user-state")
        ends0, _, _ = topic_bytes(bootstrap, changelog)
        for phase, rate in ((sat, None), (fixed, a.rate)):
            phase.stats0 = worker.stats() or {}
            proc = replay(k, phase, rate, run_dir)
            try:
                got = wait_answered(collector, worker, phase, budget)
            finally:
                stop_process(proc)
            time.sleep(1.0)
            phase.stats1 = worker.stats() or {}
            lat = [j.latency_s * 1000 for j in got]
            if phase is sat:
                produce = self._produce_times(collector, phase)
                arrivals = [produce[(j.user_id, j.ts)] + j.latency_s for j in got]
                first = min(produce.values())
                self.row["saturation_events_per_s"] = len(got) / max(1e-9, max(arrivals) - first)
                self.row["saturation_p50_ms"] = pct(lat, 50)
            else:
                self.row.update(p50_ms=pct(lat, 50), p99_ms=pct(lat, 99), rate_events=len(got),
                                rate_offered=rate)
            self.console.print(f"{phase.name}: {len(got)} answered, p50 {pct(lat, 50):.0f} ms, "
                               f"p99 {pct(lat, 99):.0f} ms")
        _, size, n = topic_bytes(bootstrap, changelog, ends0)
        events = fixed.stats1.get("events", 0) - sat.stats0.get("events", 0)
        self.row["changelog_bytes_per_engagement"] = size / max(1, events)
        self.row["changelog_records_per_engagement"] = n / max(1, events)
        s0, s1 = sat.stats0, fixed.stats1
        ev = max(1, s1.get("events", 0) - s0.get("events", 0))
        self.row["retrieval_ms_per_event"] = 1000 * (s1.get("retrieval_s", 0) - s0.get("retrieval_s", 0)) / ev
        for part in ("model", "store", "index"):
            self.row[f"{part}_ms_per_event"] = 1000 * (s1.get(f"{part}_s", 0) - s0.get(f"{part}_s", 0)) / ev
        # where model time goes: sessions_recomputed on the engine thread, lane_recomputed in the lane
        for c in ("sessions_encoded", "sessions_recomputed", "lane_recomputed", "summaries"):
            self.row[f"{c}_per_event"] = (s1.get(c, 0) - s0.get(c, 0)) / ev
        self._next = a.saturation_events + a.rate_events

    def _doubling(self, k, worker, collector, held, data: Path, maker, run_dir: Path, budget: Budget) -> None:
        """New item vectors (as many as the catalogue) published during a 25/s replay."""
        from store.thread_priority import lower_thread_priority
        from streams.data.bulk_load import Targets, load_items
        from streams.kafka.processes import stop_process

        a = self.args
        path = new_items_file(data, self.items, a.seed)
        text0 = worker.log.read_text(errors="replace")
        log0 = (text0.count("rebuilding vector index"), text0.count("vector index swapped"))
        phase = Phase("doubling", held[self._next:])
        base = (worker.stats() or {}).get("items_upserted", 0)
        proc = replay(k, phase, a.rate, run_dir)
        time.sleep(a.doubling_lead_s)
        window: dict[str, float] = {"start": time.time()}
        # what the window cost the worker and the machine: the bench's producer and the broker
        # share the 2 cores with the worker, and a worker slower than the offered rate builds a
        # backlog that p99 shows (docs: the doubling's p99)
        cpu0, mach0, busy0 = proc_cpu_s(worker.proc.pid), machine_cpu_s(), (worker.stats() or {}).get("agent_s", 0.0)
        errors: list[BaseException] = []

        def publish() -> None:
            # the items group's publishing runs on other machines in a deployment; here on the
            # worker's 2 cores, so it takes the cycles the worker leaves (its producer's threads too)
            lower_thread_priority(a.publisher_nice)
            try:  # as the items group publishes them (other workers encoded them): vectors only
                load_items(k, path, maker, Targets("", ""), topics=("item-vectors",),
                           start_block=NEW_BLOCKS)
            except BaseException as e:  # noqa: B036 - reported below
                errors.append(e)
            window["sent"] = time.time()
        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        try:
            while (worker.stats() or {}).get("items_upserted", 0) < base + self.items:
                budget.check("catalogue doubling")
                worker.check_alive()
                if errors:
                    raise RanOut(f"catalogue doubling: publishing failed: {errors[0]!r}")
                time.sleep(0.5)
            window["applied"] = time.time()
            swapped = self._wait_swap(worker, log0, budget)
            window["end"] = max(window["applied"], swapped or 0)
            time.sleep(a.doubling_tail_s)
        finally:
            stop_process(proc)
        thread.join(timeout=60)
        self._window_cpu(worker, window, cpu0, mach0, busy0)
        got = judged_of(collector, phase.events)
        produce = self._produce_times(collector, phase)
        timed = [(produce.get((j.user_id, j.ts), 0) - window["start"], j.latency_s * 1000) for j in got]
        timed = [(t, ms) for t, ms in timed if 0 <= t <= window["end"] - window["start"]]
        during = [ms for _, ms in timed]
        text = worker.log.read_text(errors="replace")
        self.row.update(p99_during_retrain_ms=pct(during, 99), p50_during_retrain_ms=pct(during, 50),
                        during_retrain_events=len(during),
                        doubling_window_s=window["end"] - window["start"],
                        doubling_publish_s=window.get("sent", window["end"]) - window["start"],
                        # the apply's pace while serving (ApplyPacer's share and rate floor)
                        doubling_applied_per_s=self.items / max(window["applied"] - window["start"], 1e-9),
                        index_rebuilds_during_doubling=text.count("rebuilding vector index") - log0[0],
                        index_swaps=re.findall(r"vector index swapped to (\w+) over (\d+) items", text)[-3:],
                        doubling_p99_by_5s=_p99_by(timed, 5.0))
        p99 = self.row.get("p99_ms")
        self.row["p99_during_retrain_ratio"] = (pct(during, 99) / p99) if during and p99 else None
        self.console.print(f"doubling: {len(during)} engagements in the {self.row['doubling_window_s']:.0f}s "
                           f"window, p99 {pct(during, 99) or float('nan'):.0f} ms "
                           f"({self.row['index_rebuilds_during_doubling']} index rebuilds)")

    def _window_cpu(self, worker, window: dict[str, float], cpu0: float, mach0: tuple[float, float],
                    busy0: float) -> None:
        """The worker's CPU (cores), its agents' busy share and the machine's busy share over the
        doubling's window (start to the tail's end)."""
        wall = time.time() - window["start"]
        busy, total = (a - b for a, b in zip(machine_cpu_s(), mach0, strict=True))
        agent = (worker.stats() or {}).get("agent_s", 0.0) - busy0
        self.row.update(doubling_worker_cores=(proc_cpu_s(worker.proc.pid) - cpu0) / wall,
                        doubling_machine_busy=busy / total if total else None,
                        doubling_agent_busy=agent / wall)

    def _wait_swap(self, worker, log0: tuple[int, int], budget: Budget) -> float | None:
        """When every index rebuild started since the doubling began was swapped in (None:
        it started none)."""
        while True:
            text = worker.log.read_text(errors="replace")
            started = text.count("rebuilding vector index") - log0[0]
            if started <= 0:
                return None
            if text.count("vector index swapped") - log0[1] >= started:
                return time.time()
            budget.check("index retrain")
            time.sleep(0.5)

    @staticmethod
    def _produce_times(collector, phase: Phase) -> dict[tuple[str, float], float]:
        keys = {(e["user_id"], float(e["ts"])) for e in phase.events}
        with collector.data.lock:
            return {(e["user_id"], float(e["ts"])): collector.data.produce_ts[pos]
                    for pos, e in collector.data.engagements.items() if (e["user_id"], float(e["ts"])) in keys}

    def _recall(self, cat, held: list[dict], maker, model) -> None:
        """recall@100 of the worker's index configuration against exact search, on the interest
        vectors the engine would query with for warm users (the index rebuilt here)."""
        from model.query_codes import select_queries
        from store.config import IndexConfig
        from store.faiss_index import FaissIndex
        from streams.data.bulk_load import warm_state
        from streams.engine.config import EngineConfig

        vectors = maker.vectors(self.items)
        ids = [f"i{k}" for k in range(self.items)]
        t0 = time.perf_counter()
        index = FaissIndex(IndexConfig(dim=vectors.shape[1]))
        for s in range(0, self.items, 65_536):
            index.upsert(ids[s:s + 65_536], vectors[s:s + 65_536])
        index.finish_rebuild()
        self.row["recall_index_build_s"] = time.perf_counter() - t0
        users = list(dict.fromkeys(e["user_id"] for e in held))[: self.args.recall_users]
        q_codes = EngineConfig.from_model(model.config).query_codes
        hits = []
        for u in users:
            st = warm_state(u, self._hist[u], self._rule, self._remember, cat)
            codes = model.user_codes([st.session_embeddings.astype(np.float32)],
                                     st.global_embedding.astype(np.float32)[None])[0]
            for q in select_queries(model.interest_vectors(codes[None])[0], q_codes):
                exact = np.argpartition(-(vectors @ q), RECALL_K)[:RECALL_K]
                got = {h[0] if isinstance(h, tuple) else h.item_id for h in index.search(q[None], RECALL_K)}
                hits.append(len(got & {ids[j] for j in exact}) / RECALL_K)
        self.row["ann_recall_at_100"] = float(np.mean(hits)) if hits else None
        self.row["index_mode"] = index.mode
        self.row["recall_queries"] = len(hits)


def definitions() -> dict[str, str]:
    return {
        "state_bytes_p50/max": "encoded warm user states as written to the changelog (store codec)",
        "changelog_bytes_per_engagement": "key + value bytes the user-state changelog grew by over the "
                                          "saturation and 25/s replays / engagements the worker handled",
        "saturation_events_per_s": "held-out engagements offered at once / (first produced -> last "
                                   "recommendation consumed)",
        "saturation_ratio": "saturation_events_per_s / the smallest size's of the same run",
        "run": "when the bench started (UTC); the CPU differs between machines, so ratios stay within a run",
        "p50_ms/p99_ms": "engagement produced -> its recommendation consumed, at 25 engagements/s offered",
        "retrieval_ms_per_event": "worker stats retrieval_s (ranking's index searches) / engagements, "
                                  "over the saturation and 25/s replays",
        "ann_recall_at_100": "the worker's IndexConfig rebuilt in the bench over the same vectors: top-100 "
                             "of each interest vector the engine queries with (warm users' states) "
                             "against exact inner product",
        "rss_mb": "the worker's VmRSS after the replays and the doubling (rss_peak_mb: VmHWM)",
        "broker_rss_mb": "the bundled broker's VmRSS at the end of the size (memory storage: every topic)",
        "restore_s": "worker start -> faust table recovery of the user-state changelog complete",
        "catalogue_ready_s": "worker start -> its item-vectors replica caught up (nothing encoded)",
        "sweep_max_block_ms": "longest event-loop hold of one expiry sweep slice (worker stats)",
        "doubling_worker_cores": "the worker's CPU seconds per wall second over the doubling's window",
        "doubling_agent_busy": "the worker's engagement batches' busy share of that window (agent_s)",
        "doubling_p99_by_5s": "p99 ms of the engagements produced in each 5 s of the doubling's window, in order",
        "doubling_machine_busy": "the share of all cores busy over that window (bench, broker, worker)",
        "item_hold_max_ms/item_slice_max": "the longest hold of the engine lock by one item-vectors slice "
                                           "while serving (the doubling's: its index upserts and offsets) "
                                           "and the most records in one (worker stats)",
        "p99_during_retrain_ratio": "p99 of the 25/s engagements produced while the catalogue doubles "
                                    "(publishing the new vectors -> the worker holds them all and any index "
                                    "rebuild they started is swapped in) / p99_ms",
    }


def run_pipeline(args, console) -> dict[str, Any]:
    """Every size (rows kept from an earlier scale.json for sizes not run now, with --merge)."""
    from rich.progress import Progress

    WORK.mkdir(parents=True, exist_ok=True)
    # a SIGTERM unwinds like an error: the broker and the worker are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pairs = list(zip(args.sizes, args.user_counts, strict=True))
    old = json.loads(args.json_out.read_text()) if args.merge and args.json_out.is_file() else {}
    rows = {(r["items"], r["users"], r.get("run", "")): r for r in old.get("rows", [])}
    from bench_scale import machine

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("pipeline", total=len(pairs))
        for items, users in pairs:
            progress.update(task, description=f"{items:,} items, {users:,} users")
            rows[(items, users, RUN)] = Size(items, users, args, console).run()
            write(args, rows, machine(1), console)
            progress.advance(task)
    return write(args, rows, machine(1), console)


def vector_spec(args):
    """The bulk load's item vectors: --data fitted, the mixture fitted to the encoder's items in
    --vectors (their norms vary as the encoder's do); otherwise clustered unit vectors."""
    from streams.data.bulk_load import VectorSpec

    return VectorSpec(seed=args.seed, fitted_from=str(args.vectors) if args.data == "fitted" else None)


def write(args, rows: dict, mach: dict, console) -> dict[str, Any]:
    ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[2], k[0], k[1]))]
    smallest = min((r["items"] for r in ordered), default=0)
    for r in ordered:  # against the smallest size of the same run (none in a run without it)
        base = next((o.get("saturation_events_per_s") for o in ordered if o.get("run", "") == r.get("run", "")
                     and o["items"] == smallest and o.get("saturation_events_per_s")), None)
        s = r.get("saturation_events_per_s")
        r["saturation_ratio"] = s / base if s and base else None
    result = {"question": "how does each per-engagement cost grow with catalogue and user count?",
              "level": "pipeline", "broker": "bundled (tansu, memory storage)",
              "worker": "threadrec worker subprocess, default flags, --torch-threads 1 (--loglevel info), "
                        "empty data dir",
              "checkpoint": "the demo's quick-checkpoint architecture (streams/demo/checkpoint.py "
                            "QUICK_MODEL), packaged MiniLM backbone, untrained heads (seeded): cost, not quality",
              "vectors": {**vector_spec(args).describe(),
                          "note": "not the encoder's output (too slow for 1M items on 2 cores): the "
                                  "checkpoint's encoder fingerprint, vectors from this generator"},
              "warm_states": "streams/data/bulk_load.py warm_state: the feed's train+valid history per "
                             "user, session embeddings = mean of the items' vectors",
              "config": {"saturation_events": args.saturation_events, "rate": args.rate,
                         "rate_events": args.rate_events, "budget_min": args.budget_min,
                         "seed": args.seed, "recall_users": args.recall_users,
                         "publisher_nice": args.publisher_nice},
              "machine": {**mach, "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30},
              "definitions": definitions(), "rows": ordered}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"wrote {args.json_out}")
    return result
