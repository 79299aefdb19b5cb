"""One question (issue 26): with 2 workers, does each encode about half of the items, and how
much faster does the pair encode a catalogue than one worker alone?

Through the bundled broker and real `threadrec worker` subprocesses (--torch-threads 1, other
flags default, empty data dirs) of one group (one topic prefix and app id), over the scale
bench's checkpoint (bench/scale_pipeline.py: the demo's quick-checkpoint architecture, packaged
MiniLM backbone, untrained seeded heads: cost and share, not quality). N items of the synthetic
production feed (streams/data/production_feed.py) are replayed to `items` once every worker of
the case is ready. Cases, each on its own topic prefix, in one invocation:

- solo: one worker encodes all N;
- pair: two workers, both ready before the items arrive, each encodes its `items` partitions;
- join: the second worker is launched while the first is encoding, early by its own start-up
  time (the pair case's launch -> ready, times one worker's items/s) so that it joins well before
  the end (its start-up slows the first, so it joins earlier than --join-at: the JSON gives what
  was left when it became ready); it takes over partitions in the rebalance and encodes what is
  left of them.

A case ends when every worker's item store holds all N (stats `items_upserted`) and item-vectors
holds a vector of every item. Per worker, from its stats file: `items_encoded` (the engine's
counter of items run through the item encoder), its share of N, `model_s` (wall seconds in the
encoder calls: nothing else runs the model here) and the process's CPU seconds over the case.

    python bench/bench_encoding_share.py --items 8000 --json bench/results/encoding_share.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from scale_pipeline import machine_cpu_s, proc_cpu_s, scale_checkpoint

from streams.kafka.broker import EmbeddedBroker
from streams.kafka.clients import consume_all
from streams.kafka.replay import ensure_topic_set, replay_to_broker
from streams.kafka.settings import KafkaSettings
from streams.worker.process import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench-encoding-share"
FLAGS = {"torch_threads": 1}
SETTLE_S = 3.0  # both members in the items group before the items arrive (as the broker test)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # enough that the second worker's start-up (about 25 s on 2 busy cores) ends before half
    ap.add_argument("--items", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", nargs="+", default=["solo", "pair", "join"],
                    choices=["solo", "pair", "join"])
    ap.add_argument("--join-at", type=float, default=0.5,
                    help="share of N the first worker has encoded when the second should join")
    ap.add_argument("--stall-s", type=float, default=180.0, help="fail a case after this long without progress")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/encoding_share.json")
    return ap.parse_args()


def items_file(n: int, seed: int) -> Path:
    """n items of the synthetic production feed as items.jsonl (written once per n and seed)."""
    from streams.data.production_feed import (
        FeedConfig,
        TextMaker,
        item_lines,
        make_catalogue,
        vocabulary,
    )

    out = WORK / f"items-{n}-{seed}.jsonl"
    if not out.is_file():
        cfg = FeedConfig(items=n, users=1, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as fh:
            fh.writelines(item_lines(cfg, make_catalogue(cfg), TextMaker(vocabulary(cfg.vocabulary_words)[0],
                                                                        cfg.categories)))
    return out


@dataclass
class Member:
    """One worker of a case and what the bench saw of it (times from its launch, monotonic)."""

    name: str
    proc: WorkerProcess
    launched: float
    ready_s: float | None = None
    cpu_from: float = 0.0  # its CPU seconds when the items arrived, or when it became ready after
    cpu_at_end: float = 0.0
    encoded: int = 0
    encoded_last_t: float | None = None  # when its items_encoded last grew
    stats: dict[str, Any] = field(default_factory=dict)

    def poll(self) -> dict[str, Any]:
        self.proc.check_alive()
        st = self.stats = self.proc.stats() or {}
        now = time.monotonic()
        if st.get("ready") and self.ready_s is None:
            self.ready_s, self.cpu_from = now - self.launched, proc_cpu_s(self.proc.proc.pid)
        if st.get("items_encoded", 0) > self.encoded:
            self.encoded, self.encoded_last_t = st["items_encoded"], now
        return st


def launch(k: KafkaSettings, ckpt: Path, run_dir: Path, name: str) -> Member:
    worker = WorkerProcess(k, ckpt, run_dir / name, run_dir / f"{name}.log", **FLAGS).start()
    return Member(name, worker, time.monotonic())


def wait(members: list[Member], done, what: str, stall_s: float) -> None:
    """Poll every member until done(members); RuntimeError after stall_s without progress."""
    last, since = None, time.monotonic()
    while True:
        progress = [(m.poll().get("items_upserted", 0), m.encoded, m.ready_s is not None) for m in members]
        if done(members):
            return
        if progress != last:
            last, since = progress, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise RuntimeError(f"no progress for {stall_s:.0f}s waiting for {what}: "
                               f"{[(m.name, m.stats) for m in members]}")
        time.sleep(0.2)


def holds_all(n: int):
    """Done: the members encoded N together and each stored every vector they published."""
    def done(members: list[Member]) -> bool:
        published = sum(m.encoded for m in members)
        return published >= n and all(m.stats.get("items_upserted", 0) >= published for m in members)
    return done


def share_summary(encoded: list[int], n: int, encode_wall_s: float) -> dict[str, Any]:
    """A case's totals from each worker's items_encoded: the shares of N, how far the most uneven
    is from an even split, what was encoded twice (redelivered after a rebalance), items/s."""
    total = sum(encoded)
    return {"encoded_total": total, "encoded_twice": total - n, "shares": [e / n for e in encoded],
            "max_off_even": max(abs(e / n - 1 / len(encoded)) for e in encoded),
            "encode_wall_s": encode_wall_s, "items_per_s": n / encode_wall_s if encode_wall_s > 0 else None}


def partition_counts(keys: list[str], partitions: int) -> list[int]:
    """Items per `items` partition as the producers' default partitioner spreads the keys
    (murmur2): how even a split of whole partitions between workers can be."""
    from kafka.partitioner.default import murmur2

    counts = [0] * partitions
    for key in keys:
        counts[(murmur2(key.encode()) & 0x7FFFFFFF) % partitions] += 1
    return counts


def speedup(cases: dict[str, dict[str, Any]]) -> float | None:
    """The pair's items/s over one worker's, both of this invocation (None without both)."""
    pair, solo = (cases.get(c, {}).get("items_per_s") for c in ("pair", "solo"))
    return pair / solo if pair and solo else None


def cpu_speedup(cases: dict[str, dict[str, Any]]) -> float | None:
    """The pair's speed-up were each worker given a core of its own: one worker's CPU seconds
    for the catalogue over the busier pair member's (None without both cases)."""
    solo, pair = (cases.get(c, {}).get("workers") for c in ("solo", "pair"))
    if not solo or not pair:
        return None
    most = max(w["cpu_s"] for w in pair)
    return solo[0]["cpu_s"] / most if most else None


def member_row(m: Member, n: int) -> dict[str, Any]:
    st = m.stats
    enc, model_s, cpu = m.encoded, st.get("model_s", 0.0), m.cpu_at_end - m.cpu_from
    return {"worker": m.name, "items_encoded": enc, "share": enc / n, "encode_model_s": model_s,
            "encode_items_per_s": enc / model_s if model_s else None,
            "cpu_s": cpu, "items_per_cpu_s": enc / cpu if cpu else None,
            "vectors_applied": st.get("items_upserted"),
            "vectors_applied_not_encoded_here": st.get("items_upserted", 0) - enc,
            "vectors_reencoded": st.get("vectors_reencoded"), "bad_items": st.get("bad_items"),
            "launch_to_ready_s": m.ready_s}


@dataclass
class Run:
    """What the cases of one invocation share: the broker, the checkpoint, the items, options."""

    bootstrap: str
    ckpt: Path
    items: Path
    args: argparse.Namespace

    def topics(self, case: str) -> KafkaSettings:
        """A fresh deployment (topic prefix, so app id and items group) for one case."""
        k = KafkaSettings(bootstrap=self.bootstrap, broker_kind="tansu",
                          topic_prefix=f"es-{case}-{uuid.uuid4().hex[:6]}-")
        return ensure_topic_set(k)

    def run_dir(self, case: str) -> Path:
        out = WORK / f"run-{case}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        return out

    def launch(self, stack: ExitStack, k: KafkaSettings, run_dir: Path, name: str) -> Member:
        m = launch(k, self.ckpt, run_dir, name)
        stack.callback(m.proc.stop)
        return m

    def wait(self, members: list[Member], done, what: str) -> None:
        wait(members, done, what, self.args.stall_s)

    def produce(self, k: KafkaSettings, members: list[Member]) -> tuple[float, tuple[float, float]]:
        """The N items to `items` (the CLI's replay path); (monotonic start, machine CPU then)."""
        t0, mach0 = time.monotonic(), machine_cpu_s()
        for m in members:  # the workers' CPU counts from here (start-up and idle left out)
            m.cpu_from = proc_cpu_s(m.proc.proc.pid)
        replay_to_broker([self.items], k, progress=False, create_topics=False)
        return t0, mach0

    def finish(self, case: str, k: KafkaSettings, members: list[Member], t0: float,
               mach0: tuple[float, float]) -> dict[str, Any]:
        """The case's row, once holds_all: per worker, totals, and item-vectors read back."""
        n, end = self.args.items, time.monotonic()
        busy, total = (a - b for a, b in zip(machine_cpu_s(), mach0, strict=True))
        for m in members:
            m.cpu_at_end = proc_cpu_s(m.proc.proc.pid)
        published = sum(m.encoded for m in members)
        recs = consume_all(self.bootstrap, k.topic("item-vectors"), published, timeout_s=120)
        wall = max(m.encoded_last_t or t0 for m in members) - t0
        cpu = sum(m.cpu_at_end - m.cpu_from for m in members)
        return {"case": case, "items": n, "partitions": k.partitions, "workers": [member_row(m, n) for m in members],
                **share_summary([m.encoded for m in members], n, wall),
                "catalogue_on_every_worker_s": end - t0, "machine_busy": busy / total if total else None,
                "worker_cores": cpu / (end - t0),
                "item_vectors_records": len(recs), "item_vectors_keys": len({r.key for r in recs})}


def group_case(run: Run, case: str, count: int) -> dict[str, Any]:
    """`count` workers, all ready (and settled in the items group) before the items arrive."""
    k, run_dir = run.topics(case), run.run_dir(case)
    with ExitStack() as stack:
        members = [run.launch(stack, k, run_dir, f"w{j}") for j in range(count)]
        run.wait(members, lambda ms: all(m.ready_s is not None for m in ms), "workers ready")
        time.sleep(SETTLE_S)
        t0, mach0 = run.produce(k, members)
        run.wait(members, holds_all(run.args.items), "the catalogue")
        return run.finish(case, k, members, t0, mach0)


def join_case(run: Run, lead_items: float) -> dict[str, Any]:
    """The second worker launched once the first encoded join_at x N less `lead_items` (what one
    worker alone encodes while another starts up), so that it joins before the end."""
    n, k, run_dir = run.args.items, run.topics("join"), run.run_dir("join")
    with ExitStack() as stack:
        first = run.launch(stack, k, run_dir, "w0")
        run.wait([first], lambda ms: ms[0].ready_s is not None, "the first worker ready")
        t0, mach0 = run.produce(k, [first])
        trigger = max(0, int(run.args.join_at * n - lead_items))
        run.wait([first], lambda ms: ms[0].encoded >= trigger, "the first worker's share")
        at_launch = first.encoded
        second = run.launch(stack, k, run_dir, "w1")
        run.wait([first, second], lambda ms: ms[1].ready_s is not None, "the second worker ready")
        at_ready = first.encoded
        run.wait([first, second], holds_all(n), "the catalogue")
        row = run.finish("join", k, [first, second], t0, mach0)
    left = n - at_ready
    row["join"] = {"launch_trigger": trigger, "first_encoded_at_launch": at_launch,
                   "first_encoded_at_second_ready": at_ready, "left_at_second_ready": left,
                   "second_encoded": second.encoded,
                   "second_share_of_left": second.encoded / left if left else None}
    return row


def run_cases(run: Run, console: Console) -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}
    for case in run.args.cases:
        if case == "join":
            solo, pair = cases.get("solo", {}), cases.get("pair", {})
            start_s = max((w["launch_to_ready_s"] for w in pair.get("workers", [])), default=0.0)
            cases[case] = join_case(run, (solo.get("items_per_s") or 0.0) * start_s)
        else:
            cases[case] = group_case(run, case, 1 if case == "solo" else 2)
        c = cases[case]
        console.print(f"{case}: encoded {[w['items_encoded'] for w in c['workers']]} of {run.args.items}, "
                      f"{c['items_per_s']:.1f} items/s, every worker holds all after "
                      f"{c['catalogue_on_every_worker_s']:.1f}s")
    return cases


def definitions() -> dict[str, str]:
    return {
        "run": "when the bench started (UTC); run_s: how long it took",
        "items_encoded": "the worker's stats items_encoded: items its engine ran through the item encoder",
        "share": "items_encoded / N",
        "encode_model_s": "the worker's stats model_s: wall seconds inside the encoder calls (the engine "
                          "thread; no engagements run here, so nothing else calls the model)",
        "encode_items_per_s": "items_encoded / encode_model_s: one worker's encoder speed, wall (waits for "
                              "a core included)",
        "cpu_s": "the worker process's CPU seconds from the items' replay start (or its ready, if later) "
                 "to the case end: encoding its share, publishing it and applying every vector",
        "items_per_cpu_s": "items_encoded / cpu_s",
        "worker_cores": "the case's workers' cpu_s together / (replay start -> case end): the cores they got",
        "cpu_speedup_pair_over_solo": "cpu_s of the solo worker / of the busier pair member: the pair's "
                                      "speed-up were each worker given a free core (the wall speed-up is "
                                      "bounded by the cores the machine had free)",
        "vectors_applied": "stats items_upserted: item-vectors records stored (every vector, its own "
                           "included, reaches the store through the replica, never the encoder)",
        "vectors_applied_not_encoded_here": "vectors_applied - items_encoded: read without encoding",
        "encode_wall_s": "the items' replay start -> the last worker's items_encoded reached its final "
                         "value (stats written every 0.5 s, polled every 0.2 s)",
        "items_per_s": "N / encode_wall_s: the case's encoding throughput",
        "speedup_pair_over_solo": "items_per_s of the pair / of one worker, same invocation",
        "catalogue_on_every_worker_s": "the items' replay start -> every worker stored every published vector",
        "encoded_twice": "sum of items_encoded - N: items redelivered to a new owner after a rebalance "
                         "(at-least-once: the commit of a batch in flight is lost)",
        "machine_busy": "share of all cores busy from the replay start to the case end (/proc/stat: "
                        "workers, broker, bench and other users of the machine)",
        "join": "the second worker launched while the first encodes; left_at_second_ready: N - what the "
                "first had encoded when the second became ready; second_share_of_left: its items_encoded / that",
    }


def main() -> None:
    import signal
    import sys

    from bench_scale import machine

    args = parse_args()
    console = Console()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # workers and broker stop on the way out
    ckpt, items = scale_checkpoint(console), items_file(args.items, args.seed)
    mach = {**machine(1), "worker_torch_threads": FLAGS["torch_threads"],
            "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS")}
    t0, run = time.monotonic(), time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    with EmbeddedBroker() as broker:
        cases = run_cases(Run(broker.bootstrap, ckpt, items, args), console)
    keys = [json.loads(line)["item_id"] for line in items.read_text().splitlines()]
    partitions = next(iter(cases.values()))["partitions"]
    result = {"question": "with 2 workers, does each encode about half of the items, and how much faster "
                          "is the pair than one worker? (issue 26)",
              "broker": "bundled (tansu, memory storage)",
              "worker": "threadrec worker subprocess, --torch-threads 1, other flags default, empty data dir; "
                        "one deployment (topic prefix, items group) per case",
              "checkpoint": "the demo's quick-checkpoint architecture (streams/demo/checkpoint.py QUICK_MODEL), "
                            "packaged MiniLM backbone, untrained heads (seeded): cost and share, not quality",
              "items": f"{args.items:,} items of the synthetic production feed (seed {args.seed})",
              "run": run, "run_s": time.monotonic() - t0,
              "config": {"items": args.items, "seed": args.seed, "join_at": args.join_at,
                         "settle_s": SETTLE_S},
              "items_per_partition": partition_counts(keys, partitions),
              "machine": {**mach, "load_avg_at_end": os.getloadavg()},
              "speedup_pair_over_solo": speedup(cases), "cpu_speedup_pair_over_solo": cpu_speedup(cases),
              "definitions": definitions(), "cases": cases}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"pair / solo: {result['speedup_pair_over_solo']}; wrote {args.json}")


if __name__ == "__main__":
    main()
