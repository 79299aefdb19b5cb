"""How long the serving thread holds the vector index while it rebuilds and snapshots, against
the work done aside: the upsert that decides a rebuild (it copies the first chunk), searches
while the rest is copied a chunk per call and the new IVF trains on its thread, the swap (the
journal's tail replayed), a snapshot's chunked copy (each step under the lock; the one-go
freeze beside it) and its write (outside it).

Usage: python bench/bench_index_aside.py [--items 100000 --dim 384 --json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from store.config import IndexConfig
from store.faiss_index import FaissIndex
from store.synthetic import ClusteredVectors


def ms(t: float) -> float:
    return 1e3 * (time.perf_counter() - t)


def rebuild_aside(index: FaissIndex, data: ClusteredVectors, n: int) -> dict:
    """Double the catalogue (an IVF retrain), then search and upsert until the new IVF is in."""
    extra, ids = data.sample(n, 3), [f"new{k}" for k in range(n)]
    index.upsert(ids[:-1], extra[:-1])  # one short of the doubling: no rebuild yet
    t = time.perf_counter()
    index.upsert(ids[-1:], extra[-1:])  # the one that decides it: copies the first chunk
    out = {"deciding_upsert_ms": ms(t), "rebuilding": index._rebuild is not None}
    t0, searches, upserts = time.perf_counter(), [], 0
    queries = [q[None] for q in data.sample(64, 4)]
    while index._rebuild is not None:
        t = time.perf_counter()
        index.search_many(queries[:8], 100)  # swaps in when the build is ready
        searches.append(ms(t))
        index.upsert([f"live{upserts}"], data.sample(1, 5 + upserts))
        upserts += 1
        time.sleep(0.005)
    out.update({"build_aside_s": time.perf_counter() - t0, "searches_during": len(searches),
                "search_ms_p50_during": float(np.median(searches)),
                "search_ms_max_during": max(searches),  # the last one includes the swap
                "upserts_replayed": upserts, "mode": index.mode, "nlist": index.nlist})
    t = time.perf_counter()
    index.search_many(queries[:8], 100)
    out["search_ms_after"] = ms(t)
    return out


def snapshot(index: FaissIndex) -> dict:
    """A snapshot copied in chunks (each step under the lock) and written (outside it), and the
    same copy in one go (stop the world) for comparison."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        frozen = index.freeze({0: 1})
        freeze = ms(t)
        copy, steps = index.start_copy(), []
        while True:
            t = time.perf_counter()
            done = copy.step()
            steps.append(ms(t))
            if done:
                break
        frozen = index.finish_copy(copy, {0: 1})
        t = time.perf_counter()
        frozen.write(Path(tmp) / "index")
        return {"snapshot_copy_steps": len(steps), "snapshot_copy_step_ms_max": max(steps),
                "snapshot_copy_step_ms_p50": float(np.median(steps)),
                "snapshot_one_go_copy_ms": freeze, "snapshot_write_ms": ms(t)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000, help="catalogue before the doubling")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    data = ClusteredVectors(dim=args.dim, seed=args.seed)
    # the first IVF is trained at this size; doubling it triggers one retrain
    index = FaissIndex(IndexConfig(dim=args.dim, exact_threshold=min(50_000, args.items)))
    index.upsert([f"i{k}" for k in range(args.items)], data.sample(args.items, 1))
    index.finish_rebuild()
    out = {"items": args.items, "dim": args.dim, **snapshot(index)}
    out.update(rebuild_aside(index, data, args.items))
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
