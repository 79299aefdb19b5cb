"""One question: which IVF settings give recall@100 >= 0.95 against exact search within 10 ms of
retrieval per engagement on one thread, on realistic item vectors, at 100k to 1M items?

Data (--data):
- feed: the synthetic production feed's items encoded by the packaged pretrained encoder
  (streams/data/feed_vectors.py writes DIR/items.npy and DIR/user_codes.npy; encoded here into
  --vectors when missing), the first N of them;
- fitted: store.synthetic.FittedVectors fitted to those encoded items and sampled at N (how a
  1M-row set is formed from the ~100k a CPU encodes in minutes; its recall is checked against
  the real rows at the size both have);
- clustered: store.synthetic.ClusteredVectors (recall 1.0 everywhere: too easy to choose by).
The last --held-out encoded items are never indexed: they are the `items` queries.
Queries (--queries): `codes`: per user the engine's EngineConfig.query_codes of its UPE codes
(model/query_codes.py), as rank() queries; `items`: 10 held-out item vectors per user.
Per size and layout (--layouts: `banded`, the IVF in norm bands with fp16 codes and pooled
probes, IndexConfig's default; `banded-shares`, the same bands with fp32 codes and each query's
rows shared 8:4:2:1 by the bands, the default before; `single`, one IVF over all items;
`banded-pqM`, the banded default scanning a copy of its lists in M 4-bit PQ codes, each query's
fetch x R best refined with the fp16 codes for each R of --scan-refine, 0 scanning the fp16 codes
of the same index in turn, IndexConfig.scan_pq) and row
budget per query (--scan-rows; --nprobe adds fixed settings for the single IVF): recall@100 of FaissIndex.search (max over the user's queries) against
exact search (faiss.knn, IndexFlatIP's), CPU ms per engagement of FaissIndex.search_many with the
engine's bounds (EngineConfig.candidates past a 60-item seen list, EngineConfig.fetch), and the
build (bulk upsert + IVF training aside) seconds. One thread for faiss and BLAS.

    python bench/bench_index.py --data feed fitted --sizes 88000 1000000 --json bench/results/index.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from model.query_codes import select_queries
from store.ann_recall import exact_top
from store.config import IndexConfig
from store.faiss_index import FaissIndex
from store.synthetic import ClusteredVectors, FittedVectors
from streams.engine.config import EngineConfig

ROOT = Path(__file__).resolve().parents[1]
RECALL_K = 100
LAYOUTS = {  # IndexConfig options of each layout
    "banded": {},
    "banded-shares": {"ivf_codes": "flat", "pooled_probes": False, "scan_rows_exponent": 0.0},
    "single": {"norm_bands": (), "scan_rows_exponent": 0.0},
    # each change alone (not run by default)
    "banded-fp16-shares": {"pooled_probes": False},
    "banded-fp32-pooled": {"ivf_codes": "flat"},
    # the banded default scanning a 4-bit PQ copy of its lists (M codes a vector), each query's
    # fetch x r best refined with the fp16 codes (store/faiss_scan.py)
    "banded-pq50": {"scan_pq": 50},
    "banded-pq100": {"scan_pq": 100},
    "banded-pq200": {"scan_pq": 200},
    # the banded default with its --scan-rows fixed (by default they are the budget at 1M items,
    # scaled by the catalogue's cube root: IndexConfig.scan_rows_exponent)
    "banded-fixed": {"scan_rows_exponent": 0.0},
    # the banded default searching every query, near-duplicates too (IndexConfig.query_merge_cos)
    "banded-unmerged": {"query_merge_cos": 1.0},
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", choices=("feed", "fitted", "clustered"), default=["feed", "fitted"])
    p.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000],
                   help="catalogue sizes (feed: at most the encoded items less the held-out ones)")
    p.add_argument("--queries", nargs="+", choices=("codes", "items"), default=["codes", "items"])
    p.add_argument("--vectors", type=Path, default=ROOT / "data" / "feed_vectors")
    p.add_argument("--encode-items", type=int, default=52_000, help="items to encode when --vectors is empty")
    p.add_argument("--held-out", type=int, default=2000, help="encoded items kept out as `items` queries")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--nlist-scale", type=float, nargs="+", default=[0.0],
                   help="one IVF: nlist = scale x sqrt(N) (0: the IndexConfig default)")
    p.add_argument("--nprobe", type=int, nargs="+", default=[],
                   help="fixed nprobe settings measured beside the row budgets (one IVF only)")
    p.add_argument("--scan-rows", type=int, nargs="+", default=[15_000, 20_000, 25_000, 30_000, 48_000],
                   help="row budgets per query (IndexConfig.scan_rows: at 1M items, by the cube root of "
                        "the items elsewhere in the banded layouts; banded-shares, single, banded-fixed: fixed)")
    p.add_argument("--layouts", nargs="+", choices=tuple(LAYOUTS), default=["banded", "banded-shares", "single"],
                   help="banded: the IVF in norm bands, fp16 codes, pooled probes (the default); banded-shares: "
                        "fp32 codes, each query's rows shared 8:4:2:1 by the bands (the default before); single: "
                        "one IVF over all items")
    p.add_argument("--scan-refine", type=int, nargs="+", default=[0, 2],
                   help="banded-pq layouts: candidates per result from the PQ copy (0: scan the fp16 codes)")
    p.add_argument("--timed-users", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", type=Path)
    return p.parse_args()


def feed_vectors(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(encoded items [n, d], UPE codes [u, m, d]) from --vectors, encoded there if missing."""
    items, codes = args.vectors / "items.npy", args.vectors / "user_codes.npy"
    if not (items.exists() and codes.exists()):
        from model.config import EmbSumConfig
        from model.inference import EmbSumInference
        from streams.data.feed_vectors import encode

        inf = EmbSumInference.pretrained(EmbSumConfig(), device="cpu", mode="auto")
        vectors, user_codes = encode(inf, args.encode_items, max(args.users, 400))
        args.vectors.mkdir(parents=True, exist_ok=True)
        np.save(items, vectors)
        np.save(codes, user_codes)
    return np.load(items), np.load(codes)


def catalogue(kind: str, n: int, real: np.ndarray, fitted: list[FittedVectors], seed: int) -> np.ndarray:
    if kind == "feed":
        if n > len(real):
            raise ValueError(f"{n} feed items asked for, {len(real)} encoded")
        return np.ascontiguousarray(real[:n])
    if kind == "fitted":
        if not fitted:
            t = time.perf_counter()
            fitted.append(FittedVectors.fit(real, seed=seed))
            print(f"fitted to {len(real):,} encoded items in {time.perf_counter() - t:.0f} s")
        return fitted[0].sample(n, stream=1)
    return ClusteredVectors(dim=real.shape[1], seed=seed).sample(n, 1)


def user_queries(kind: str, codes: np.ndarray, held: np.ndarray, users: int) -> list[np.ndarray]:
    if kind == "codes":
        q = EngineConfig().query_codes
        return [select_queries(c, q) for c in codes[:users]]
    per = 10
    users = min(users, len(held) // per)
    return [held[u * per:(u + 1) * per] for u in range(users)]


def cpu_ms(index: FaissIndex, queries: list[np.ndarray], n: int, seed: int) -> float:
    """CPU ms per engagement of search_many with the engine's bounds and a 60-item seen list."""
    engine, rng = EngineConfig(), np.random.default_rng(seed)
    seen = [{f"i{k}" for k in rng.choice(n, 60, replace=False)} for _ in queries]
    t = time.process_time()
    for q, s in zip(queries, seen, strict=True):
        index.search_many([q], engine.candidates, [s], bound=engine.fetch)
    return 1e3 * (time.process_time() - t) / len(queries)


def bench_setting(vectors: np.ndarray, nlist: int | None, layout: str, queries: dict[str, list[np.ndarray]],
                  truth: dict[str, list[set[int]]], args: argparse.Namespace) -> list[dict[str, Any]]:
    n = len(vectors)
    t = time.perf_counter()
    # IVF below the exact threshold too, so the real rows show IVF at the size they have
    index = FaissIndex(IndexConfig(dim=vectors.shape[1], nlist=nlist, **LAYOUTS[layout],
                                   exact_threshold=min(n, IndexConfig().exact_threshold)))
    index.upsert([f"i{k}" for k in range(n)], vectors)
    index.finish_rebuild()
    build_s = time.perf_counter() - t
    settings = [(rows, None) for rows in args.scan_rows] + [(IndexConfig.scan_rows, p) for p in args.nprobe
                                                            if layout == "single"]
    refines = args.scan_refine if LAYOUTS[layout].get("scan_pq") else [None]
    out = []
    for (scan_rows, nprobe), refine in itertools.product(settings if index.mode == "ivf" else [(0, 0)], refines):
        if index.mode == "ivf":
            index.set_scan_rows(scan_rows)
            index.set_nprobe(nprobe)  # None: the row budget
        if refine is not None:
            index.set_scan_refine(refine)
        for kind, qs in queries.items():
            got = [{int(i[1:]) for i, _ in index.search(q, RECALL_K)} for q in qs]
            recall = float(np.mean([len(g & w) / RECALL_K for g, w in zip(got, truth[kind], strict=True)]))
            name = layout if refine is None else f"{layout} r{refine}" if refine else f"{layout} fp16 scan"
            out.append({"items": n, "layout": name,
                        "scan_refine": refine, "mode": index.mode, "nlist": index.nlist,
                        "nprobe": index.nprobe, "scan_rows": scan_rows if nprobe is None else None,
                        "rows_at_size": index.rows_budget(n) if nprobe is None else None,
                        "default_nprobe": layout == "banded" and nprobe is None and scan_rows == IndexConfig.scan_rows,
                        "queries": kind, "recall_at_100": recall, "build_s": build_s,
                        "cpu_ms_per_engagement": cpu_ms(index, qs[:args.timed_users], n, args.seed)})
    return out


def bench_data(kind: str, n: int, real: np.ndarray, codes: np.ndarray, fitted: list[FittedVectors],
               args: argparse.Namespace, console: Console) -> list[dict[str, Any]]:
    vectors = catalogue(kind, n, real[:-args.held_out], fitted, args.seed)
    held = real[-args.held_out:]
    queries = {q: user_queries(q, codes, held, args.users) for q in args.queries}
    truth = {q: [exact_top(u, vectors, RECALL_K) for u in qs] for q, qs in queries.items()}
    rows = []
    for layout in args.layouts:
        for scale in args.nlist_scale if layout == "single" else [0.0]:  # bands size their own lists
            nlist = int(round(scale * math.sqrt(n))) if scale > 0 else None
            for row in bench_setting(vectors, nlist, layout, queries, truth, args):
                rows.append({"data": kind, **row})
                console.print(f"{kind} {n:,} {row['layout']} nlist {row['nlist']} nprobe {row['nprobe']} "
                              f"rows {row['scan_rows']} {row['queries']}: recall {row['recall_at_100']:.3f}, "
                              f"{row['cpu_ms_per_engagement']:.2f} ms")
    return rows


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="IVF recall@100 against exact, CPU ms per engagement (one thread)")
    for col in ("data", "items", "layout", "nlist", "rows budget", "nprobe", "queries", "recall@100",
                "ms/engagement", "build s"):
        table.add_column(col, justify="right")
    for r in rows:
        budget = f"{r['scan_rows']:,}{' (default)' if r.get('default_nprobe') else ''}" if r.get("scan_rows") else "-"
        table.add_row(r["data"], f"{r['items']:,}", r.get("layout", "single"), str(r["nlist"]), budget,
                      str(r["nprobe"]), r["queries"],
                      f"{r['recall_at_100']:.3f}", f"{r['cpu_ms_per_engagement']:.2f}", f"{r['build_s']:.0f}")
    console.print(table)


def main() -> None:
    args = parse_args()
    faiss.omp_set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    console = Console(width=140)
    real, codes = feed_vectors(args)
    fitted: list[FittedVectors] = []
    rows = [row for kind in args.data for n in args.sizes
            if kind != "feed" or n <= len(real) - args.held_out
            for row in bench_data(kind, n, real, codes, fitted, args, console)]
    print_table(rows, console)
    result = {
        "question": "which IVF settings give recall@100 >= 0.95 within 10 ms per engagement, on realistic vectors?",
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json_out"},
        "index_defaults": IndexConfig().__dict__,
        "engine": {"query_codes": EngineConfig().query_codes, "candidates": EngineConfig().candidates,
                   "fetch": EngineConfig().fetch.__dict__},
        "encoded_items": len(real), "users_with_codes": len(codes),
        "machine": {"cpu_count": os.cpu_count(), "load_avg_at_end": os.getloadavg(),
                    "python": platform.python_version(), "faiss": faiss.__version__, "threads": 1},
        "rows": rows,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
