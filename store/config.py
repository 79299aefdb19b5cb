"""Frozen option dataclasses, one per store component."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IndexConfig:
    """Options of the FAISS vector index (inner-product metric)."""

    dim: int = 384
    # Exact IndexFlatIP below this many items, IVF-Flat at or above it.
    exact_threshold: int = 50_000
    # None: about nlist_per_sqrt x sqrt(n) lists, chosen at each (re)train.
    nlist: int | None = None
    nlist_per_sqrt: float = 1.0
    # Lists probed per query; None: the lists that hold about scan_rows vectors on average, so
    # smaller catalogues probe a larger share of their lists (and get the recall that buys).
    nprobe: int | None = None
    # With norm bands a user's queries pool their budgets (pooled_probes).
    # bench/results/index.json (one thread, 10 UPE codes per engagement, the encoder's vectors):
    # banded, 25k rows: 88k items recall@100 0.998 in 7.7 ms per engagement, 1M 0.967 in 8.4 ms
    # (the layout before, 48k rows: 0.990 in 8.1 ms, 0.980 in 29 ms). One IVF, 1M, 25k: 0.47.
    # 15k since near-duplicate queries merge (query_merge_cos; 2026-12-07, one run, quiet machine):
    # 1M fitted items 0.957 in 8.4 ms (unmerged 25k: 0.955 in 10.7); with a trained checkpoint's
    # items and codes 0.992 in 8.6 ms (unmerged 15k 0.991 in 8.0, 25k 0.996 in 10.9).
    scan_rows: int = 15_000
    # The budget follows the catalogue: scan_rows at scan_rows_items, x (items / scan_rows_items) **
    # exponent elsewhere (0: a fixed scan_rows). Recall@100 0.95 took ~10k rows at the feed's 88k
    # items, 13k at 300k fitted, 20-21k at 1M: about the cube root. With it 88k items scan 11.1k
    # rows (0.968 in 6.2 ms, 25k: 0.996 in 11.7), 300k 16.7k (0.973 in 9.3 ms, 25k: 0.985 in 10.8).
    scan_rows_items: int = 1_000_000
    scan_rows_exponent: float = 1 / 3
    # Norm-rank cuts of the IVF's bands (store/faiss_bands.py): the top 3%, 7%, 20% of norms and
    # the rest; () for one IVF over all items. Not used on a GPU or with a fixed nlist.
    norm_bands: tuple[float, ...] = (0.03, 0.1, 0.3)
    # The banded IVF's codes: "fp16" (half the memory and scan traffic; scores within ~2e-4 of
    # exact, the engine reranks exactly) or "flat" (fp32, exact).
    ivf_codes: str = "fp16"
    # Banded: M > 0 keeps beside the lists a copy in M 4-bit PQ codes (M / 2 bytes an item, M
    # divides the stored width: 400 with fp16 codes) that the search scans, faiss' fast scan, and
    # then scores each query's fetch x scan_refine best there exactly with the IVF's own codes
    # (store/faiss_scan.py); 0: the search scans the IVF's codes. scan_refine 0: the same. Off: on
    # the feed's 88k items M = 200, x4 gave 0.952 in 6.8 ms where fp16 at 15k rows gave 0.985 in
    # 6.4 ms (docs/architecture.md).
    scan_pq: int = 0
    scan_refine: int = 2
    # Banded: a user's queries share its row budget (scan_rows x queries), spent on the (query,
    # list) pairs of the best estimated scores, q.c + probe_spread x |q| x the list's radius
    # (store/faiss_bands.py); False: each query scans scan_rows, shared 8:4:2:1 by the bands.
    pooled_probes: bool = True
    probe_spread: float = 0.25
    # Pooled: a user's queries within this cosine of a larger one are searched as that one (its
    # budget kept): near-duplicate codes probe the same lists, and 84% of the rows 10 codes scanned
    # at 1M items were re-reads (store/faiss_bands.py: merge_queries); 1.0: none merged.
    query_merge_cos: float = 0.999
    # Retrain IVF when the catalogue has grown by this factor since the last training.
    retrain_growth: float = 2.0
    # Rebuild (mode switch, IVF retrain) on a background thread while the old index serves;
    # False: inline in the upsert/remove that decides it (deterministic tests, offline builds).
    rebuild_aside: bool = True
    # The aside rebuild's thread runs this much nicer, its k-means on this many OpenMP threads:
    # on a 2-core worker a rebuild on both cores at equal priority doubled p99 while it ran.
    rebuild_nice: int = 10
    rebuild_threads: int = 1
    train_iterations: int = 10
    # k-means sees at most this many points per list (faiss' own default is 256).
    max_train_points_per_list: int = 64
    # None: use a GPU when faiss reports one; False: never; True: require one.
    use_gpu: bool | None = None
    # Force a searchable replica even on CPU (tests exercise the GPU replica logic with it).
    force_replica: bool = False
    # Labels one step of a chunked copy (a rebuild's or a snapshot's) reads under the serving
    # lock at most, and the time it may take: a step reads as many labels as fit copy_chunk_s at
    # the cost per label measured (16,384 labels of the banded fp16 IVF at 100k items took
    # 50-220 ms, each step a stall of an engagement batch or an item-vectors slice).
    copy_chunk_rows: int = 16_384
    copy_chunk_s: float = 0.002
    # Re-clone the search replica when dead labels exceed this fraction of its size.
    replica_resync_fraction: float = 0.05
    seed: int = 1234


@dataclass(frozen=True)
class FetchBound:
    """How many neighbours one query fetches, whatever the length of the user's seen list.

    First pass: k x factor (a power of two), excluded items filtered from the merged hits. A
    user left with fewer than k gets one second pass, fetching k + its exclusions but at most
    `limit`; past that it accepts fewer than k. Without a bound (None) fetch grows with the
    exclusions: exact, the oracle.
    """

    factor: int = 2
    limit: int = 512


@dataclass(frozen=True)
class RocksMemory:
    """Memory one RocksDB database may hold: memtables and the block cache (RocksDB's own
    defaults are 64 MiB x 2 memtables; faust's tables default to a 2 GiB block cache)."""

    memtable_bytes: int = 16 * 1024 * 1024  # one write buffer
    memtables: int = 2  # write buffers kept before a flush stalls writes
    block_cache_bytes: int = 32 * 1024 * 1024  # LRU cache of uncompressed blocks

    @property
    def budget_bytes(self) -> int:
        return self.memtable_bytes * self.memtables + self.block_cache_bytes


ITEM_CACHE_BYTES = 64 * 1024 * 1024  # decoded item records an ItemStore keeps (LRU)


@dataclass(frozen=True)
class CacheConfig:
    """Options of the bounded least-recently-used cache of recomputable arrays."""

    max_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class FrequencyConfig:
    """Monolith-style frequency filter: personalise only after min_count engagements."""

    min_count: int = 3
    # Count-min sketch shape; error <= 2 * events / width with probability 1 - 2**-depth.
    width: int = 1 << 18
    depth: int = 4
    # Halve every counter after this many observations, so passers-by fade out (0: never).
    decay_every: int = 10_000_000


@dataclass(frozen=True)
class IdMemoryConfig:
    """Collisionless ID embedding table (Monolith): exact-key rows with Adagrad slots."""

    dim: int = 16  # width of every ID embedding row
    # Occurrences before an id gets a row (ML-100K is small; Monolith uses higher).
    min_count: int = 1
    # Event-time seconds without an occurrence before a row expires (0: never).
    ttl_s: float = 30 * 24 * 3600.0
    cache_rows: int = 100_000  # decoded rows kept in memory (LRU, written back on eviction)
    # Every row's version held in memory (a dict, ~110 bytes a row), read from the KV at open and
    # kept exact by every change: a replica accepts a synced row without reading the stored one.
    versions_held: bool = False
    # Ids changed since the last drain_touched kept for the publisher; a replica publishes
    # nothing, and kept them all (~100 bytes an id: every row of a worker's table)
    track_touched: bool = True
    lr: float = 0.05  # Adagrad learning rate
    initial_accumulator: float = 0.1  # Adagrad accumulator of a new row
    eps: float = 1e-8  # Adagrad: added to sqrt(accumulator) before dividing
    init_scale: float = 0.01  # new rows are uniform in [-init_scale, init_scale]
    seed: int = 0  # a new row is a hash of (seed, table, id): every process admits the same row
    # Count-min sketch counting occurrences for admission (its min_count yields to the one above).
    frequency: FrequencyConfig = field(default_factory=FrequencyConfig)
