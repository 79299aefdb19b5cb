"""Longest event-loop block of one expiry-sweep pass over N user states, through the worker's
own path: a faust rocksdb table (one RocksDB per partition), the sliced sweep
(streams/worker/expiry.py) with its header peeks on a thread, deletes through the table.

A probe coroutine asks the loop for a 1 ms sleep over and over; how late each wake-up comes is
how long the loop was held. Beside it, what the sweep before slicing held the loop for: every
state listed and decoded whole, on the loop. No broker: every partition counts as this worker's
(active), and the deletes' changelog records stay in the unstarted producer's buffer.

Usage: python bench/bench_sweep.py [--users 2000 --partitions 4 --expired 0.1 --json OUT]
(slice size and pause: --sweep-slice-keys / --sweep-slice-every-s, defaults from WorkerSettings)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import faust
from faust.types import TP

from store import decode_user_state, encode_user_state
from store.synthetic import typical_user_state
from streams.kafka.gap_fetcher import FetchedEvent, FetchedMessage
from streams.worker.batch import acting_as
from streams.worker.config import WorkerSettings
from streams.worker.expiry import ExpirySweep
from streams.worker.heap import freeze_startup_objects
from streams.worker.runtime import Runtime
from streams.worker.topics import Tables

DAY = 86_400.0
NOW = 1.7e9


def fill(table, users: int, partitions: int, expired: float) -> None:
    """Users with 60 recent and 1,000 earlier items (about 10 KB each), spread over partitions;
    the first `expired` share of each partition last seen 40 days before its watermark."""
    template = typical_user_state(n_earlier=1000)
    store = table.data
    for k in range(users):
        part = k % partitions
        template.user_id, template.applied = f"user-{k:08d}", {part: k}
        template.last_seen = NOW - (40 if k < expired * users else 1) * DAY
        store._db_for_partition(part)[template.user_id.encode()] = encode_user_state(template)


async def probe(stop: asyncio.Event, blocks: list[float], step_s: float = 0.001) -> None:
    """Record how late each 1 ms sleep wakes up (seconds)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(step_s)
        blocks.append(loop.time() - t - step_s)


class Timed:
    """Wall time of each call of a function (the sweep's reads on its thread, deletes on the loop)."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, []

    def __call__(self, *args):
        t = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds.append(time.perf_counter() - t)


async def sliced_pass(runtime: Runtime, tables: Tables) -> dict:
    """One pass as the worker's task runs it: a slice, then sweep_slice_every_s of pause; the
    probe's worst lateness, and the longest stretch of sweep code on the loop (one run of deletes;
    the slice is read and peeked on a thread), which the machine's other load does not inflate
    the way it does the probe's."""
    sweep = ExpirySweep(runtime, tables, "engagements")
    read, delete = Timed(sweep.scan.read), Timed(sweep._delete)
    sweep.scan = SimpleNamespace(read=read, get=sweep.scan.get)
    sweep._delete = delete  # type: ignore[method-assign]
    stop, blocks = asyncio.Event(), []
    watcher = asyncio.create_task(probe(stop, blocks))
    await asyncio.sleep(0.05)
    t, sweep.in_pass, slices = time.perf_counter(), True, 0
    while sweep.in_pass:
        await sweep.step()
        slices += 1
        await asyncio.sleep(runtime.settings.sweep_slice_every_s)
    seconds = time.perf_counter() - t
    stop.set()
    await watcher
    return {"sweep_max_block_ms": 1e3 * max(blocks),
            "sweep_loop_work_max_ms": 1e3 * max(delete.seconds, default=0.0),
            "slice_read_max_ms": 1e3 * max(read.seconds, default=0.0),
            "sweep_pass_s": seconds, "slices": slices, "expired": sweep.pass_expired,
            "idle_max_block_ms": await idle_max_block_ms(seconds)}


async def idle_max_block_ms(seconds: float) -> float:
    """The probe's worst lateness with no sweep, as long as the pass took: this machine's noise."""
    stop, blocks = asyncio.Event(), []
    watcher = asyncio.create_task(probe(stop, blocks))
    await asyncio.sleep(seconds)
    stop.set()
    await watcher
    return 1e3 * max(blocks)


def warm_changelog(table) -> None:
    """One write and delete first: faust builds its changelog sender on the first one, which in
    a worker happened at its first engagement, not in a sweep."""
    with acting_as(FetchedEvent(FetchedMessage("engagements", 0, -1, b"warm", None, 0.0))):
        table[b"warm"] = b"x"
        del table[b"warm"]


def full_decode_block_ms(table) -> float:
    """What the sweep before slicing held the loop for: list and decode every state."""
    t = time.perf_counter()
    for _, raw in list(table.items()):
        decode_user_state(bytes(raw))
    return 1e3 * (time.perf_counter() - t)


async def measure(args: argparse.Namespace, datadir: Path) -> dict:
    settings = WorkerSettings(sweep_slice_keys=args.sweep_slice_keys,
                              sweep_slice_every_s=args.sweep_slice_every_s)
    app = faust.App("bench-sweep", broker="kafka://127.0.0.1:1", store="rocksdb://",
                    datadir=str(datadir))
    table = app.Table("user-state", key_type=bytes, value_type=bytes, partitions=args.partitions)
    topic = table.changelog_topic_name
    everything = {TP(topic, p) for p in range(args.partitions)}
    app.assignor.assigned_actives = lambda: everything  # no broker, no assignment: all ours
    t = time.perf_counter()
    fill(table, args.users, args.partitions, args.expired)
    out = {"users": args.users, "partitions": args.partitions, "fill_s": time.perf_counter() - t,
           "sweep_slice_keys": settings.sweep_slice_keys,
           "sweep_slice_every_s": settings.sweep_slice_every_s}
    out["full_decode_block_ms"] = full_decode_block_ms(table)
    engine = SimpleNamespace(config=SimpleNamespace(ttl_s=30 * DAY), count_expired=lambda n: None)
    runtime = Runtime(settings, engine=engine)  # the sweep reads the engine's ttl and counters only
    runtime.clock.watermarks.update({p: NOW for p in range(args.partitions)})
    warm_changelog(table)
    freeze_startup_objects()  # as the worker does once ready: a gen-2 collection would count as the sweep's
    out.update(await sliced_pass(runtime, Tables(states=table, offsets={})))  # type: ignore[arg-type]
    for db in table.data._dbs.values():
        db.close()
    return out


def main() -> None:
    defaults = WorkerSettings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--expired", type=float, default=0.1, help="share of users past the TTL")
    ap.add_argument("--sweep-slice-keys", type=int, default=defaults.sweep_slice_keys)
    ap.add_argument("--sweep-slice-every-s", type=float, default=defaults.sweep_slice_every_s)
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
