"""One question: what do exact and approximate (IVF) FAISS search cost and recall at 100k / 1M items?

Also reports bytes per encoded user state and per item record. Usage:
    python bench/bench_index.py --sizes 100000 1000000 --json bench/results/index.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from store.config import IndexConfig
from store.faiss_index import FaissIndex, gpu_available
from store.item_record import ItemRecord, encode_item_record
from store.synthetic import ClusteredVectors, typical_user_state
from store.user_state import encode_user_state

logger = logging.getLogger(__name__)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--users", type=int, default=200, help="query users per size")
    p.add_argument("--vectors-per-user", type=int, default=1, help="interest vectors per user")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--nprobe", type=int, nargs="+", default=[32])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", default=None, help="write results here")
    return p.parse_args()


def timed_search(index: FaissIndex, queries: list[np.ndarray], k: int) -> tuple[list, float]:
    start = time.perf_counter()
    hits = index.search_many(queries, k)
    return hits, time.perf_counter() - start


def recall(got: list, want: list, k: int) -> float:
    return float(
        np.mean(
            [len({g[0] for g in a} & {w[0] for w in b}) / k for a, b in zip(got, want, strict=True)]
        )
    )


def bench_size(n: int, args: argparse.Namespace) -> list[dict]:
    data = ClusteredVectors(dim=args.dim, seed=args.seed)
    vectors, ids = data.sample(n, 1), [f"item{j}" for j in range(n)]
    flat = data.sample(args.users * args.vectors_per_user, 2)
    queries = [
        flat[u * args.vectors_per_user : (u + 1) * args.vectors_per_user] for u in range(args.users)
    ]
    t0 = time.perf_counter()
    exact = FaissIndex(IndexConfig(dim=args.dim, exact_threshold=n + 1))
    exact.upsert(ids, vectors)
    exact_build = time.perf_counter() - t0
    want, exact_s = timed_search(exact, queries, args.k)
    del exact
    t0 = time.perf_counter()
    approx = FaissIndex(
        IndexConfig(dim=args.dim, exact_threshold=min(50_000, n), nprobe=args.nprobe[0])
    )
    approx.upsert(ids, vectors)
    approx.finish_rebuild()  # the IVF trains aside: the build time includes it
    approx_build = time.perf_counter() - t0
    rows = []
    for nprobe in args.nprobe:
        approx.set_nprobe(nprobe)
        got, approx_s = timed_search(approx, queries, args.k)
        n_queries = args.users * args.vectors_per_user
        rows.append(
            {
                "items": n,
                "nlist": approx.nlist,
                "nprobe": nprobe,
                "recall_at_k": recall(got, want, args.k),
                "exact_qps": n_queries / exact_s,
                "approx_qps": n_queries / approx_s,
                "speedup": exact_s / approx_s,
                "exact_build_s": exact_build,
                "approx_build_s": approx_build,
            }
        )
    return rows


def record_sizes(dim: int) -> dict:
    state = typical_user_state(dim=dim)
    rng = np.random.default_rng(0)
    item = ItemRecord(
        item_id="N12345",
        text="A 40-word title and abstract. " * 10,
        category="news/sports",
        cpe=rng.standard_normal((4, dim)).astype(np.float16),
        vector=rng.standard_normal(dim).astype(np.float32),
        ts=1.7e9,
    )
    return {
        "user_state_bytes": len(encode_user_state(state)),
        "user_state_shape": f"60 items, 8 sessions, m=32, d={dim}",
        "item_record_bytes": len(encode_item_record(item)),
        "item_record_shape": f"300-char text, CPE 4 x {dim} fp16, vector {dim} fp32",
    }


def print_table(rows: list[dict], sizes: dict, k: int) -> None:
    table = Table(title=f"exact (IndexFlatIP) vs IVF-Flat, recall@{k}, clustered vectors")
    for col in [
        "items",
        "nlist",
        "nprobe",
        f"recall@{k}",
        "exact q/s",
        "IVF q/s",
        "speedup",
        "IVF build s",
    ]:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['items']:,}", str(r["nlist"]), str(r["nprobe"]), f"{r['recall_at_k']:.4f}",
            f"{r['exact_qps']:.0f}", f"{r['approx_qps']:.0f}", f"{r['speedup']:.1f}x", f"{r['approx_build_s']:.1f}",
        )  # fmt: skip
    console = Console(width=120)
    console.print(table)
    console.print(f"user state: {sizes['user_state_bytes']} B ({sizes['user_state_shape']})")
    console.print(f"item record: {sizes['item_record_bytes']} B ({sizes['item_record_shape']})")


def main() -> None:
    args = parse_args()
    rows = [row for n in args.sizes for row in bench_size(n, args)]
    sizes = record_sizes(args.dim)
    print_table(rows, sizes, args.k)
    result = {
        "question": "exact vs IVF search: recall@k and queries/s (ratios from one run); record sizes",
        "config": {k: v for k, v in vars(args).items() if k != "json_out"},
        "machine": {"cpu_threads": faiss.omp_get_max_threads(), "gpu": gpu_available(), "python": platform.python_version(), "faiss": faiss.__version__},
        "data": "store.synthetic.ClusteredVectors: 1000 topic centres, noise 1.0, unit norm",
        "search": rows,
        "records": sizes,
    }  # fmt: skip
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
