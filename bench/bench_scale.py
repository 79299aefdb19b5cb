"""One question: how does each per-engagement cost grow with the catalogue (and user) count?

Component level: the project's own parts called in one process, the way the engine calls them
per engagement (streams/engine/rounds.py: `rank`), with no broker, no worker and no Kafka, so
these numbers are each part's cost, not the pipeline's latency. Per catalogue size:

- retrieval: FaissIndex with the IndexConfig defaults (exact below 50k items, IVF at or above),
  one engagement = m interest vectors (the model config's UPE codes) fetching `candidates` items
  past the user's seen items; build (bulk upsert, as a worker restart does), live upserts, IVF
  k-means alone, snapshot bytes, RSS, recall@100 against exact search (faiss IndexFlatIP) on the
  bench's own queries. Vectors are random unit vectors (`--data clustered`: store.synthetic's;
  `--data fitted`: store.synthetic.FittedVectors fitted to the feed's encoded items in
  `--vectors DIR`, queried by its users' UPE codes, as bench/bench_index.py);
- retrieval again with the engine's bounds (EngineConfig: `query_codes` of the m codes chosen by
  model/query_codes.py, fetch bounded by `fetch`): `retrieval_ms_bounded_seen*`;
- the hybrid's ID half (streams/engine/id_half.py) with N rows: loading the rows, building its
  index over g_i e_i and its reference sample (once per start), updating the rows one
  `parameters` chunk changed, and per engagement the tower, the ID retrieval (through the
  index) and the ID terms (whose prior reads the row sample);
- the encoded user state (store codec) with 60 recent and 0 / 1000 earlier items;
- item encoding throughput of the real pretrained encoder on 512 items of the synthetic feed,
  from which the catalogue's encode time per worker follows (N / items per s).

Threads: one each for faiss, torch and numpy's BLAS (`--threads`); timings are per call, wall
and the process's CPU time (robust where other processes share the cores). A size that does not
fit (memory cap, deadline) is recorded with `ran_out` naming the resource.
Pipeline level (`--level pipeline`, bench/scale_pipeline.py): the same sizes through the bundled
broker and a real worker subprocess, written to bench/results/scale.json; its item vectors are
clustered unit vectors, or with `--data fitted` the mixture fitted to the encoder's items in
`--vectors` (norms vary, so the index's norm bands apply).
Usage: python bench/bench_scale.py --sizes 10000 100000 1000000
       python bench/bench_scale.py --level pipeline --data fitted --sizes 10000 100000 --user-counts 10000 100000
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from model.backbones import packaged_minilm_dir
from model.config import EmbSumConfig
from model.ids.hybrid import Fusion
from model.ids.sasrec import SASRec, SASRecOptions
from model.inference import EmbSumInference
from model.query_codes import select_queries
from model.text import item_text
from store import EarlierItems, IdMemory, IdMemoryConfig, IdRow
from store.ann_recall import exact_top
from store.config import IndexConfig
from store.faiss_index import FaissIndex
from store.memory_backend import MemoryKV
from store.synthetic import ClusteredVectors, FittedVectors, typical_user_state
from store.user_state import decode_user_state, encode_user_state
from streams.data.production_feed import (
    FeedConfig,
    TextMaker,
    item_lines,
    make_catalogue,
    vocabulary,
)
from streams.engine.config import EngineConfig
from streams.engine.id_half import IdHalf

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "scale_components.json"
PIPELINE_JSON = ROOT / "bench" / "results" / "scale.json"
RECALL_K = 100
SEEN = (60, 1060)  # a user's kept history alone, and with EngineConfig.max_seen earlier items


class OutOfBudget(Exception):
    """A size ran past the deadline or the memory cap; the message names the resource."""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--users", type=int, default=50, help="timed engagements per size and seen size")
    p.add_argument("--recall-users", type=int, default=20, help="users whose recall@100 is checked")
    p.add_argument("--threads", type=int, default=1, help="faiss OpenMP, torch and BLAS threads")
    p.add_argument("--data", choices=("random", "clustered", "fitted"), default="random")
    p.add_argument("--vectors", type=Path, default=ROOT / "data" / "feed_vectors",
                   help="--data fitted: items.npy and user_codes.npy (python -m streams.data.feed_vectors)")
    p.add_argument("--id-dim", type=int, default=SASRecOptions().dim, help="ID row width")
    p.add_argument("--prior-q", type=float, default=0.99, help="ID prior quantile (<0: none)")
    p.add_argument("--no-clustered-recall", action="store_true",
                   help="skip recall@100 on clustered vectors (a second index per size)")
    p.add_argument("--memory-gb", type=float, default=8.0, help="skip a size estimated above this")
    p.add_argument("--deadline-s", type=float, default=420.0, help="give up a size after this")
    p.add_argument("--encode-sample", type=int, default=512, help="items timed through the encoder")
    p.add_argument("--no-encoder", action="store_true", help="skip the item encoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", type=Path, help=f"default {DEFAULT_JSON.name} (components) "
                   f"or {PIPELINE_JSON.name} (pipeline)")
    p.add_argument("--level", choices=("components", "pipeline"), default="components",
                   help="parts in one process, or the broker and a real worker (bench/scale_pipeline.py)")
    pipe = p.add_argument_group("pipeline level")
    pipe.add_argument("--user-counts", type=int, nargs="+", default=[10_000, 100_000, 250_000],
                      help="warm users per size (one per --sizes entry)")
    pipe.add_argument("--saturation-events", type=int, default=600, help="engagements offered at once")
    pipe.add_argument("--rate", type=float, default=25.0, help="offered engagements/s of the fixed-rate replays")
    pipe.add_argument("--rate-events", type=int, default=600, help="engagements of the fixed-rate replay")
    pipe.add_argument("--budget-min", type=float, default=40.0, help="give up a size after this (minutes)")
    pipe.add_argument("--min-free-gb", type=float, default=1.5, help="give up a size below this MemAvailable")
    pipe.add_argument("--doubling-lead-s", type=float, default=10.0, help="25/s replay before the doubling")
    pipe.add_argument("--doubling-tail-s", type=float, default=5.0, help="25/s replay after it")
    pipe.add_argument("--publisher-nice", type=int, default=19,
                      help="the doubling's vector publisher runs this much nicer (in a deployment other "
                           "machines publish them; here it shares the worker's cores; 0: as the worker)")
    pipe.add_argument("--merge", action="store_true", help="keep scale.json rows of sizes not run now")
    args = p.parse_args()
    if args.json_out is None:
        args.json_out = PIPELINE_JSON if args.level == "pipeline" else DEFAULT_JSON
    return args


# ---- machine and memory ----------------------------------------------------------------------

def _status_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return float("nan")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def reset_peak() -> None:
    """Restart VmHWM (Linux >= 4.0), so each size reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def blas_limit(threads: int) -> Any:
    """numpy's BLAS threads limited like faiss' and torch's: OpenBLAS threads spinning against
    other processes made one 10k x 128 matvec of the ID half take ~9 ms instead of 0.1 ms here."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # only the test extra installs it (via scikit-learn)
        return contextlib.nullcontext()
    return threadpool_limits(threads)


def blas_threads() -> Any:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed: not limited)"
    return {i["internal_api"]: i["num_threads"] for i in threadpool_info()}


def machine(threads: int) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
            "torch": torch.__version__, "faiss": faiss.__version__,
            "torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads(),
            "blas_threads": blas_threads(),
            "threads_flag": threads}


def estimate_gb(n: int, dim: int, id_dim: int) -> float:
    """Peak of a size, the larger of its stages (run one after the other): the bulk upsert holds
    the caller's vectors, the flat master, its export and the IVF copy (4 x n x dim floats) plus
    the id map; the ID half about 3 KB per row; the process itself about 0.5 GiB."""
    retrieval = 4 * n * dim * 4 + 250 * n
    id_half = n * (3 * 1024 + 4 * id_dim)
    return (max(retrieval, id_half) + 2**29) / 2**30


def check_budget(started: float, args: argparse.Namespace, stage: str) -> None:
    spent = time.perf_counter() - started
    if spent > args.deadline_s:
        raise OutOfBudget(f"time: {spent:.0f} s spent before {stage}, deadline {args.deadline_s:.0f} s")


# ---- retrieval ---------------------------------------------------------------------------------

FITTED: dict[str, Any] = {}  # --data fitted: the encoded vectors' directory and the fitted mixture


def unit_vectors(n: int, dim: int, seed: int, kind: str, stream: int = 0) -> np.ndarray:
    """n unit vectors: isotropic ("random") or around store.synthetic's topic centres; streams
    of one seed share the centres (items and queries of one catalogue); "fitted": the mixture
    fitted to the encoded feed items (not unit)."""
    if kind == "fitted":
        if "mixture" not in FITTED:
            # fitted to the rows bench_index.py indexes (its last 2,000 are its held-out queries)
            FITTED["mixture"] = FittedVectors.fit(np.load(FITTED["dir"] / "items.npy")[:-2000], seed=seed)
        return FITTED["mixture"].sample(n, stream)
    if kind == "clustered":
        return ClusteredVectors(dim=dim, seed=seed).sample(n, stream)
    rng = np.random.default_rng((seed, n, stream))
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # chunks keep the temporaries small
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build_index(n: int, dim: int, vectors: np.ndarray) -> tuple[FaissIndex, dict[str, Any]]:
    """The worker's restart path (store.rebuild_from_store: one upsert of every item)."""
    ids = [f"i{k}" for k in range(n)]
    before = rss_mb()
    t = time.perf_counter()
    index = FaissIndex(IndexConfig(dim=dim))
    index.upsert(ids, vectors)
    index.finish_rebuild()  # as open_index: the IVF trains aside; a restart waits for it
    out = {"mode": index.mode, "nlist": index.nlist, "build_s": time.perf_counter() - t,
           "index_rss_delta_mb": rss_mb() - before}
    if index.mode == "ivf":
        t = time.perf_counter()
        index._train_ivf(vectors)  # the index's own k-means alone; returns a new index, no state
        out["ivf_train_s"] = time.perf_counter() - t
    return index, out


def snapshot_sizes(index: FaissIndex) -> dict[str, Any]:
    """Bytes of the index as the worker snapshots it (FAISS file + id map)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index.snapshot(Path(tmp) / "index")
        seconds = time.perf_counter() - t
        return {"snapshot_s": seconds,
                "index_bytes": (Path(tmp) / "index" / "index.faiss").stat().st_size,
                "id_map_bytes": (Path(tmp) / "index" / "ids.bin").stat().st_size}


def live_upserts(index: FaissIndex, dim: int, seed: int, batch: int = 32, total: int = 1024) -> float:
    """Microseconds per item of new items upserted in micro-batches into the built index."""
    vecs = unit_vectors(total, dim, seed, "random", stream=1)
    t = time.perf_counter()
    for start in range(0, total, batch):
        index.upsert([f"new{k}" for k in range(start, start + batch)], vecs[start:start + batch])
    return 1e6 * (time.perf_counter() - t) / total


def per_engagement_ms(fn: Any, calls: list[tuple]) -> dict[str, float]:
    """Milliseconds of fn(*args) per call (one engagement each): wall mean / p50 / p99 / min, and
    the process's CPU time (one thread: unaffected by other processes taking the cores)."""
    wall, cpu = [], []
    for args in calls:
        t, c = time.perf_counter(), time.process_time()
        fn(*args)
        wall.append(1000 * (time.perf_counter() - t))
        cpu.append(1000 * (time.process_time() - c))
    arr = np.array(wall)
    return {"mean": float(arr.mean()), "p50": float(np.median(arr)), "p99": float(np.quantile(arr, 0.99)),
            "min": float(arr.min()), "cpu_mean": float(np.mean(cpu)), "cpu_p50": float(np.median(cpu))}


def user_queries(users: int, m: int, dim: int, seed: int, kind: str) -> list[np.ndarray]:
    if kind == "fitted":  # the encoded users' UPE codes
        return list(np.load(FITTED["dir"] / "user_codes.npy")[:users])
    flat = unit_vectors(users * m, dim, seed, kind, stream=2)
    return [flat[u * m:(u + 1) * m] for u in range(users)]


def seen_sets(n: int, users: int, size: int, seed: int) -> list[set[str]]:
    rng = np.random.default_rng((seed, size))
    return [{f"i{k}" for k in rng.choice(n, min(size, n), replace=False)} for _ in range(users)]


def recall_at_k(index: FaissIndex, vectors: np.ndarray, queries: list[np.ndarray]) -> float:
    got = [{int(i[1:]) for i, _ in index.search(q, RECALL_K)} for q in queries]
    want = [exact_top(q, vectors, RECALL_K) for q in queries]
    return float(np.mean([len(g & w) / RECALL_K for g, w in zip(got, want, strict=True)]))


def retrieval_stage(n: int, args: argparse.Namespace, dims: dict[str, int]) -> dict[str, Any]:
    """Build, size and query the index of n items the way the engine does per engagement."""
    vectors = unit_vectors(n, dims["dim"], args.seed, args.data, stream=1)
    index, out = build_index(n, dims["dim"], vectors)
    out.update(snapshot_sizes(index))
    queries = user_queries(args.users, dims["m"], dims["dim"], args.seed, args.data)
    engine = EngineConfig()  # the engine's bounds: q of the m codes, a bounded fetch
    chosen = [select_queries(q, engine.query_codes) for q in queries]
    for size in SEEN:
        seen = seen_sets(n, args.users, size, args.seed)
        calls = [([q], dims["k"], [s]) for q, s in zip(queries, seen, strict=True)]
        out[f"retrieval_ms_seen{size}"] = per_engagement_ms(index.search_many, calls)
        calls = [([q], dims["k"], [s], engine.fetch) for q, s in zip(chosen, seen, strict=True)]
        out[f"retrieval_ms_bounded_seen{size}"] = per_engagement_ms(index.search_many, calls)
    out["recall_at_100"] = recall_at_k(index, vectors, queries[:args.recall_users])
    out["live_upsert_us_per_item"] = live_upserts(index, dims["dim"], args.seed)
    out["rss_mb_after_retrieval"] = rss_mb()
    return out


def clustered_recall_stage(n: int, args: argparse.Namespace, dims: dict[str, int]) -> dict[str, Any]:
    """recall@100 of the same index over clustered vectors: isotropic random vectors have no
    neighbourhoods, the worst case for IVF; sentence embeddings are clustered."""
    vectors = unit_vectors(n, dims["dim"], args.seed, "clustered", stream=1)
    index = FaissIndex(IndexConfig(dim=dims["dim"]))
    index.upsert([f"i{k}" for k in range(n)], vectors)
    index.finish_rebuild()
    queries = user_queries(args.recall_users, dims["m"], dims["dim"], args.seed, "clustered")
    return {"recall_at_100_clustered": recall_at_k(index, vectors, queries)}


# ---- the hybrid's ID half ------------------------------------------------------------------------

def id_half_of(n: int, id_dim: int, prior_q: float, seed: int) -> tuple[IdHalf, float]:
    """(an IdHalf with n random rows, seconds to put the rows in), as a worker loads them."""
    rng = np.random.default_rng((seed, n, id_dim))
    memory = IdMemory(MemoryKV(), IdMemoryConfig(dim=id_dim, ttl_s=0))
    accum = np.full(id_dim, 0.1, np.float32)
    t = time.perf_counter()
    for start in range(0, n, 65_536):  # IdRow objects for a slice at a time
        rows = rng.standard_normal((min(65_536, n - start), id_dim), dtype=np.float32) * 0.1
        memory.put_rows([f"i{k}" for k in range(start, start + len(rows))],
                        [IdRow(r, accum) for r in rows])
    seconds = time.perf_counter() - t
    torch.manual_seed(seed)
    tower = SASRec([], SASRecOptions(dim=id_dim)).eval()  # the tower reads rows from the memory
    fusion = Fusion(id_dim).eval()
    fusion.prior_q.fill_(prior_q)
    return IdHalf(memory, tower, fusion), seconds


def id_stage(n: int, args: argparse.Namespace, dims: dict[str, int]) -> dict[str, Any]:
    """Load, rebuild and per-engagement costs of the ID half at n rows."""
    before = rss_mb()
    half, load_s = id_half_of(n, args.id_dim, args.prior_q, args.seed)
    t = time.perf_counter()
    half.index(), half.sample()  # once per start: later row changes update both in place
    out: dict[str, Any] = {"id_rows_load_s": load_s, "id_table_rebuild_s": time.perf_counter() - t}
    rng = np.random.default_rng((args.seed, 3))
    changed = [f"i{k}" for k in rng.choice(n, min(n, 4096), replace=False)]
    t = time.perf_counter()
    half.rows_changed(changed)  # what one applied `parameters` chunk costs the ID half
    out["id_rows_changed_us_per_row"] = 1e6 * (time.perf_counter() - t) / len(changed)
    hists = [[f"i{k}" for k in rng.choice(n, 60, replace=False)] for _ in range(args.users)]
    users = [half.user_vectors([h]) for h in hists]
    out["id_tower_ms"] = per_engagement_ms(half.user_vectors, [([h],) for h in hists])
    seen = [set(h) for h in hists]
    bound = EngineConfig().fetch
    out["id_retrieve_ms"] = per_engagement_ms(half.retrieve, [(u, dims["k"], [s], bound)
                                                              for u, s in zip(users, seen, strict=True)])
    cands = [[list(half.retrieve(u, dims["k"], [s])[0]) + [f"i{k}" for k in rng.choice(n, dims["k"])]]
             for u, s in zip(users, seen, strict=True)]
    out["id_terms_ms"] = per_engagement_ms(half.terms, [(u, c) for u, c in zip(users, cands, strict=True)])
    out["id_ms_per_engagement"] = sum(out[f"id_{s}_ms"]["mean"] for s in ("tower", "retrieve", "terms"))
    out["id_rss_delta_mb"] = rss_mb() - before
    return out


# ---- user state and item encoding ------------------------------------------------------------------

def codec_us(state: Any, repeats: int = 21) -> tuple[int, float]:
    """(encoded bytes, median microseconds of one encode + decode)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        data = encode_user_state(state)
        decode_user_state(data)
        times.append(1e6 * (time.perf_counter() - t))
    return len(data), float(np.median(times))


def user_state_stage(n: int, dims: dict[str, int]) -> dict[str, Any]:
    """Encoded bytes (and codec time) of one user's state with 60 recent and 0 / 1000 earlier items."""
    rng = np.random.default_rng(n)
    out: dict[str, Any] = {}
    for earlier in (0, 1000):
        state = typical_user_state(n_items=60, n_sessions=dims["g"], dim=dims["dim"])
        state.item_ids = [f"i{k}" for k in rng.choice(n, 60)]
        state.earlier_items = EarlierItems.of([f"i{k}" for k in rng.choice(n, min(earlier, n), replace=False)])
        size, micros = codec_us(state)
        out[f"user_state_bytes_earlier{earlier}"] = size
        out[f"user_state_codec_us_earlier{earlier}"] = micros
        # users only add state: per 1M users, what the partitions' stores hold between them
        out[f"user_state_gib_per_1m_users_earlier{earlier}"] = size * 1e6 / 2**30
    return out


def feed_texts(count: int, seed: int) -> list[str]:
    """Item texts (model.text.item_text) of the synthetic production feed's first items."""
    cfg = FeedConfig(items=count, users=1, seed=seed)
    lines = item_lines(cfg, make_catalogue(cfg), TextMaker(vocabulary()[0], cfg.categories))
    return [item_text(json.loads(line)) for line in lines]


def encoder_stage(args: argparse.Namespace) -> dict[str, Any]:
    """Items/s of EmbSumInference.pretrained (default config, packaged MiniLM), fp32 and `auto`."""
    texts = feed_texts(args.encode_sample, args.seed)
    out: dict[str, Any] = {"sample_items": len(texts), "batch_size": EmbSumInference.batch_size}
    for mode in ("fp32", "auto"):
        try:
            inf = EmbSumInference.pretrained(EmbSumConfig(), device="cpu", mode=mode)
        except Exception as e:  # e.g. weights missing offline: say so, measure the rest
            return {**out, "skipped": f"{type(e).__name__}: {e}"}
        inf.encode_items(texts[:inf.batch_size])  # warm-up
        t = time.perf_counter()
        inf.encode_items(texts)
        out[mode] = {"resolved_mode": inf.mode, "items_per_s": len(texts) / (time.perf_counter() - t)}
    return out


# ---- one size ------------------------------------------------------------------------------------------

def bench_size(n: int, args: argparse.Namespace, dims: dict[str, int], bar: Any) -> dict[str, Any]:
    """Every measure of one catalogue size; a stage that cannot finish sets ran_out."""
    row: dict[str, Any] = {"items": n, "level": "component"}
    need = estimate_gb(n, dims["dim"], args.id_dim)
    if need > args.memory_gb:
        return {**row, "ran_out": f"memory: estimated {need:.1f} GiB > cap {args.memory_gb:g} GiB"}
    reset_peak()
    started = time.perf_counter()
    stages = [("user state", lambda: user_state_stage(n, dims)),
              ("retrieval", lambda: retrieval_stage(n, args, dims)),
              ("ID half", lambda: id_stage(n, args, dims))]
    if args.data == "random" and not args.no_clustered_recall:
        stages.append(("clustered recall", lambda: clustered_recall_stage(n, args, dims)))
    try:
        for name, stage in stages:
            check_budget(started, args, name)
            bar(f"{n:,} items: {name}")
            row.update(stage())
            gc.collect()
    except (MemoryError, OutOfBudget) as e:
        row["ran_out"] = "memory: MemoryError" if isinstance(e, MemoryError) else str(e)
    row.update(seconds=time.perf_counter() - started, rss_mb=rss_mb(), peak_rss_mb=_status_kb("VmHWM") / 1024)
    return row


def derive(rows: list[dict[str, Any]], encoder: dict[str, Any]) -> None:
    """Catalogue encode time per worker at each size, from the measured items/s."""
    for row in rows:
        for mode in ("fp32", "auto"):
            if mode in encoder:
                row[f"catalogue_encode_s_{mode}"] = row["items"] / encoder[mode]["items_per_s"]


def _ms(row: dict[str, Any], key: str) -> str:
    return f"{row[key]['mean']:.2f}" if key in row else "-"


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="per-engagement costs by catalogue size (component level, no broker)")
    for col in ("items", "index", "retrieval ms (seen 60 / 1060)", "recall@100", "build s",
                "index MB", "ID ms", "ID rebuild s", "state B (0 / 1000)", "peak MB", "ran out"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['items']:,}", f"{r.get('mode', '-')} {r.get('nlist') or ''}".strip(),
            f"{_ms(r, 'retrieval_ms_seen60')} / {_ms(r, 'retrieval_ms_seen1060')}",
            f"{r['recall_at_100']:.3f}" if "recall_at_100" in r else "-",
            f"{r['build_s']:.1f}" if "build_s" in r else "-",
            f"{r['index_bytes'] / 2**20:.0f}" if "index_bytes" in r else "-",
            f"{r['id_ms_per_engagement']:.2f}" if "id_ms_per_engagement" in r else "-",
            f"{r['id_table_rebuild_s']:.2f}" if "id_table_rebuild_s" in r else "-",
            f"{r.get('user_state_bytes_earlier0', '-')} / {r.get('user_state_bytes_earlier1000', '-')}",
            f"{r.get('peak_rss_mb', 0):.0f}", r.get("ran_out", ""))
    console.print(table)


def main() -> None:
    args = parse_args()
    if args.level == "pipeline":
        from scale_pipeline import run_pipeline

        run_pipeline(args, Console(stderr=True, width=160))
        return
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    with blas_limit(args.threads):
        run(args)


def retrieval_dim() -> int:
    """The default model's retrieval width: its backbone's hidden size (no weights loaded)."""
    return int(json.loads((packaged_minilm_dir() / "config.json").read_text())["hidden_size"])


def run(args: argparse.Namespace) -> None:
    """Every size, then the encoder; the table on stderr, the JSON to args.json_out."""
    FITTED["dir"] = args.vectors
    cfg, eng = EmbSumConfig(), EngineConfig()
    dims = {"dim": retrieval_dim(), "m": cfg.m, "g": cfg.max_sessions, "k": eng.candidates}
    console = Console(stderr=True, width=160)
    result: dict[str, Any] = {
        "question": "how does each per-engagement cost grow with catalogue and user count?",
        "level": "component", "broker": False, "machine": machine(args.threads),
        "config": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, **dims,
                   "retrieval_dim_note": "hidden size of the default backbone (packaged all-MiniLM-L6-v2)",
                   "index": IndexConfig().__dict__, "seen_sizes": list(SEEN)}}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scale", total=len(args.sizes) + 1)

        def bar(text: str) -> None:
            progress.update(task, description=text)
        rows = []
        for n in args.sizes:
            rows.append(bench_size(n, args, dims, bar))
            progress.advance(task)
        bar("item encoder")
        encoder = {"skipped": "--no-encoder"} if args.no_encoder else encoder_stage(args)
        progress.advance(task)
    derive(rows, encoder)
    result.update(rows=rows, encoder=encoder, load_avg_at_end=os.getloadavg())
    print_table(rows, console)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
