"""One question: how much does a burst of item vectors (a catalogue doubling) delay the
engagements a worker serves meanwhile, apart from the broker and the cores other processes take?

In one process, no broker: a worker's Runtime over the scale bench's checkpoint (the demo's
architecture, bench/scale_pipeline.py), a RocksDB item store and the FAISS index with N items.
Engagements are offered at --rate per second and served the way the agent serves them (micro
batches of at most 64 within 20 ms, `Runtime.process`, each batch time reported to the pacers);
an engagement's latency runs from its offer to its batch's end. Phase `base`: engagements only;
phase `burst`: N more item vectors arrive meanwhile, fed to `Runtime.apply_item_vectors` in
fetches of 512 records as the replica's getmany hands them over, as fast as it takes them.
Latencies count the engagements offered in a window: base, the replay less 2 s at each end;
burst, from the first fetch to half a second after the last. It calls only what every
version of the worker has, so the same script times two checkouts (PYTHONPATH) back to back.
Phase `after`: engagements only again, over the doubled catalogue (what the
size alone costs). Also the event loop's lag (a 5 ms ticker) per phase. One torch, faiss and BLAS thread.

    python bench/bench_vector_apply.py --items 10000 --json /tmp/vector-apply.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from model.inference import EmbSumInference
from store import (
    BoundedCache,
    EncoderFingerprint,
    ItemRecord,
    ItemStore,
    ItemVector,
    encode_item_vector,
)
from store.config import IndexConfig
from store.faiss_index import FaissIndex
from streams.data.bulk_load import VectorMaker, VectorSpec
from streams.engine.engine import Engine
from streams.engine.state_mapping import BytesStateMapping
from streams.kafka.messages import source_ref
from streams.worker.config import WorkerSettings
from streams.worker.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "runs" / "bench-scale" / "checkpoint-quick-arch"
FETCH = 512  # records per getmany of the replica (streams/kafka/replica.py)


class Record:
    """What the replica hands over: an aiokafka record's fields."""

    def __init__(self, offset: int, key: bytes, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "item-vectors", 0, offset, key, value


def vector_records(maker: VectorMaker, start: int, n: int, prefix: str) -> list[Record]:
    """n encoded item vectors (ids prefix + number), offsets from `start`."""
    out = []
    for b in range(0, n, 1000):
        vec, cpe = maker.block(b // 1000 + (start // 1000), min(1000, n - b))
        for k in range(len(vec)):
            item_id = f"{prefix}{b + k}"
            rec = ItemRecord(item_id, f"item {b + k} title words for a text", "news", cpe[k], vec[k], 1.0e9)
            out.append(Record(start + b + k, item_id.encode(), encode_item_vector(ItemVector(rec, maker.fp))))
    return out


def build(args, data: Path) -> tuple[Runtime, VectorMaker]:
    """A worker's runtime over an empty item store and index, and the vectors' maker."""
    model = EmbSumInference.from_checkpoint(args.checkpoint, "cpu")
    settings = WorkerSettings()
    engine = Engine(model, items=ItemStore.open(data / "items"), index=FaissIndex(IndexConfig(dim=model.dim)),
                    states=BytesStateMapping({}), token_cache=BoundedCache.in_memory(),
                    config=settings.engine_config(model.config, "bench"))
    maker = VectorMaker(VectorSpec(fitted_from=str(args.vectors) if args.vectors else None),
                        EncoderFingerprint(model.identity, model.dim, model.config.n))
    return Runtime(settings, engine), maker


async def load(runtime: Runtime, records: list[Record]) -> None:
    """The first N items, applied before serving (as a worker's catch-up)."""
    for s in range(0, len(records), FETCH):
        await runtime.apply_item_vectors(0, records[s:s + FETCH])
    runtime.engine.finish_index_rebuild()
    runtime.serving = True


async def serve(runtime: Runtime, offers: list[tuple[float, dict]], lat: list[tuple[float, float]]) -> None:
    """Micro batches of the offered engagements (at most 64, within 20 ms), as the agent's."""
    states: dict[str, bytes] = {}
    k = 0
    while k < len(offers):
        now = time.perf_counter()
        if offers[k][0] > now:
            await asyncio.sleep(offers[k][0] - now)
            continue
        await asyncio.sleep(0.02)
        now = time.perf_counter()
        batch = []
        while k < len(offers) and offers[k][0] <= now and len(batch) < 64:
            batch.append(offers[k])
            k += 1
        t0 = time.perf_counter()
        events = [e for _, e in batch]
        _, changed = await runtime.process(events, [source_ref("engagements", 0, j, e["ts"]) for j, e in enumerate(events)],
                                           {e["user_id"]: states.get(e["user_id"]) for e in events})
        states.update(changed)
        took = time.perf_counter() - t0
        for pacer in (getattr(runtime, "param_pacer", None), getattr(runtime, "item_pacer", None)):
            if pacer is not None:
                pacer.served(took)
        lat += [(t, time.perf_counter() - t) for t, _ in batch]


async def ticker(lags: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """The event loop's lag: how late a 5 ms sleep wakes up."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append((t, time.perf_counter() - t - 0.005))


async def phase(runtime: Runtime, args, burst: list[Record] | None, seed: int) -> dict:
    rng = random.Random(seed)
    n = int(args.seconds * args.rate)
    t0 = time.perf_counter() + 0.1
    # each phase its own users (equal histories), in event time after the phases before
    offers = [(t0 + j / args.rate, {"user_id": f"u{seed}-{rng.randrange(args.users)}", "item_id": f"i{rng.randrange(args.items)}",
                                    "ts": 1.0e9 + 1.0e5 * seed + j, "kind": "click"}) for j in range(n)]
    lat: list[tuple[float, float]] = []  # (offered, latency)
    lags: list[tuple[float, float]] = []  # (woke, lag)
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(lags, stop))
    window = (t0 + 2.0, t0 + args.seconds - 2.0)  # base: the replay less its ends
    serving = asyncio.create_task(serve(runtime, offers, lat))
    if burst is not None:
        await asyncio.sleep(2.0)
        a = time.perf_counter()
        for s in range(0, len(burst), FETCH):
            await runtime.apply_item_vectors(0, burst[s:s + FETCH])
        window = (a, time.perf_counter() + 0.5)  # the burst and half a second after
    await serving
    stop.set()
    await tick
    ms = np.array([x for t, x in lat if window[0] <= t <= window[1]]) * 1000
    lag = np.array([x for t, x in lags if window[0] <= t <= window[1]]) * 1000
    return {"window_s": window[1] - window[0], "engagements": len(ms), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "loop_lag_p99_ms": float(np.percentile(lag, 99)), "loop_lag_max_ms": float(lag.max())}


async def run(runtime: Runtime, args, maker: VectorMaker) -> dict:
    """Load N items, then the two phases on one event loop (the engine lock belongs to it)."""
    await load(runtime, vector_records(maker, 0, args.items, "i"))
    burst = vector_records(maker, args.items, args.items, "n")
    return {"base": await phase(runtime, args, None, 1), "burst": await phase(runtime, args, burst, 2),
            "after": await phase(runtime, args, None, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=25.0)
    p.add_argument("--seconds", type=float, default=20.0, help="length of each phase's offered replay")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    p.add_argument("--vectors", type=Path, help="encoded feed items (fitted vectors); none: clustered")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        runtime, maker = build(args, Path(tmp))
        rows = asyncio.run(run(runtime, args, maker))
    rows["p99_ratio"] = rows["burst"]["p99_ms"] / rows["base"]["p99_ms"]
    rows["p99_ratio_after"] = rows["burst"]["p99_ms"] / rows["after"]["p99_ms"]
    rows["item_hold_max_ms"] = 1000 * getattr(runtime, "item_hold_max_s", float("nan"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                            capture_output=True, text=True).stdout.strip()
    out = {"question": "delay of served engagements while a catalogue's worth of item vectors is applied",
           "items": args.items, "rate": args.rate, "code": os.environ.get("PYTHONPATH", ""), "commit": commit,
           "load_avg": os.getloadavg()[0], **rows}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
