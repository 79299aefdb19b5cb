"""One settings object for a worker: broker, model, batching, engine policy, local data, web."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.config import EmbSumConfig, InferenceMode
from store.config import ITEM_CACHE_BYTES, RocksMemory
from streams.engine.config import EngineConfig, RefreshPolicy
from streams.engine.summary_lane import LaneLimits
from streams.kafka.messages import MessageLimits
from streams.kafka.settings import KafkaSettings

LANE = LaneLimits()


class WorkerSettings(BaseSettings):
    """Env THREADREC_* (e.g. THREADREC_BATCH_SIZE); `threadrec worker` flags, generated from
    these fields and their comments (streams/cli/flags.py), override it."""

    model_config = SettingsConfigDict(env_prefix="THREADREC_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    limits: MessageLimits = Field(default_factory=MessageLimits)  # env THREADREC_LIMIT_*
    app_id: str = "threadrec"  # consumer group; the topic prefix is prepended
    checkpoint: Path | None = None  # EmbSum checkpoint directory (none: untrained heads, warned)
    device: str | None = None  # torch device, e.g. cuda:0 or cpu (none: CUDA when present)
    # model numerics (model/numerics.py): auto = the fastest measured to hold quality on this
    # device (int8 on CPUs without native bf16); fp32 is exact (parity tests, recomputes)
    inference: InferenceMode = "auto"
    torch_threads: int | None = Field(None, ge=1)  # torch intra-op threads (none: every core this process may use)
    batch_size: int = Field(64, ge=1)  # most engagements per micro-batch (stream.take)
    # most items encoded together by the items encoder: one batch holds the engine thread this long
    item_batch_size: int = Field(32, ge=1)
    # longest wait to fill a micro-batch (s): faust waits it after every batch, busy or not, so it
    # adds to every latency; under load the batch fills from what queued meanwhile
    batch_within_s: float = Field(0.02, gt=0)
    top_k: int = Field(10, ge=1)  # recommendations per message
    candidates: int = Field(50, ge=1)  # retrieved candidates before the exact rerank
    # UPE codes that query the index per engagement (none: the engine's default; 0: all m)
    query_codes: int | None = Field(None, ge=0)
    refresh: str = "session_close"  # summary refresh: every_event|never|session_close|every_n:N|period:S
    # generate refreshed summaries off the recommendation path (a separate lane, batched across
    # users); --no-summary-lane generates them inside the engagement's round (parity tests)
    summary_lane: bool = True
    # bounds of the summary lane: jobs queued, their bytes, jobs generated together
    lane_max_jobs: int = Field(LANE.max_jobs, ge=1)  # queued summary jobs (one per user); the oldest is dropped past it
    lane_max_bytes: int = Field(LANE.max_bytes, ge=1)  # bytes of queued summary jobs (float16 session states)
    lane_batch: int = Field(LANE.batch, ge=1)  # summary jobs generated together, across users
    lane_nice: int = Field(10, ge=0, le=19)  # the lane's thread runs this much nicer: cores go to recommendations first
    # the lane starts its summaries between engagement batches, or once its oldest job waited this long (s)
    lane_yield_s: float = Field(2.0, ge=0)
    session_gap_s: float | None = None  # gap that opens a new session, s (none: the checkpoint's)
    session_max_items: int | None = None  # items that close a session (none: the checkpoint's)
    max_sessions: int | None = None  # sessions kept per user, g (none: the checkpoint's)
    min_engagements: int = Field(1, ge=1)  # engagements before personalising (else popularity)
    max_seen: int = Field(1000, ge=0)  # items beyond the kept history never recommended again
    ttl_s: float = Field(30 * 86_400.0, gt=0)  # event-time inactivity that drops a user's state
    sweep_every_s: float = Field(60.0, gt=0)  # how often an expiry sweep pass starts (wall time)
    # a pass reads this many user states per slice (header peeks on a thread) ...
    sweep_slice_keys: int = Field(256, ge=1)
    # ... and waits this long (s) between slices, so the event loop is never held for a pass
    sweep_slice_every_s: float = Field(0.02, gt=0)
    index_snapshot_every_s: float = Field(300.0, gt=0)  # how often the FAISS index is saved
    data_dir: Path = Path("threadrec-data")  # faust tables, item store, token cache
    token_cache_bytes: int = Field(512 * 1024 * 1024, ge=1)  # bound of the local token-state cache
    item_cache_bytes: int = Field(ITEM_CACHE_BYTES, ge=0)  # decoded item records kept in memory
    # memory of each RocksDB database (faust tables per partition, item store, token cache)
    rocksdb_memtable_bytes: int = Field(16 * 1024 * 1024, ge=1024 * 1024)  # one write buffer
    rocksdb_block_cache_bytes: int = Field(32 * 1024 * 1024, ge=0)  # LRU block cache
    item_wait_s: float = Field(5.0, ge=0)  # one wait of an unknown item for the items replica
    replica_wait_s: float = Field(900.0, gt=0)  # longest start-up wait for the replicas
    future_skew_s: float = Field(86_400.0, ge=0)  # an engagement ts may lead wall time by this
    # ... and lead its partition's highest accepted ts by this (a replay's gaps stay below it)
    watermark_skew_s: float = Field(30 * 86_400.0, ge=0)
    late_skew_s: float = Field(365 * 86_400.0, ge=0)  # ... and trail it by at most this
    # a parameters row more than this many syncs above the trainer's version is refused
    param_version_step: int = Field(1000, ge=1)
    # parameters records applied per hold of the engine lock: a sync of many rows is applied in
    # slices, and engagement batches waiting for the lock go between them
    param_apply_slice: int = Field(32, ge=1)
    web_port: int | None = None  # faust web server port (none: off)
    web_host: str = "127.0.0.1"  # address the faust web server binds
    metrics_port: int | None = None  # Prometheus /metrics port (none: off)
    metrics_host: str = "127.0.0.1"  # address the metrics server binds
    stats_file: Path | None = None  # rewrite this JSON file with the worker's counters
    stats_every_s: float = Field(1.0, gt=0)  # how often the stats file is rewritten (s)

    @property
    def rocks_memory(self) -> RocksMemory:
        """The memory budget of one RocksDB database."""
        return RocksMemory(memtable_bytes=self.rocksdb_memtable_bytes,
                           block_cache_bytes=self.rocksdb_block_cache_bytes)

    @property
    def group_id(self) -> str:
        return f"{self.kafka.topic_prefix}{self.app_id}"

    @property
    def items_group_id(self) -> str:
        """The consumer group that encodes `items` (the workers' item encoders)."""
        return f"{self.group_id}-items"

    def engine_config(self, model_cfg: EmbSumConfig, model_version: str) -> EngineConfig:
        """Engine options: the model's session rules unless overridden here."""
        over = {k: getattr(self, k) for k in ("session_gap_s", "session_max_items", "max_sessions", "query_codes")
                if getattr(self, k) is not None}
        return EngineConfig.from_model(model_cfg, top_k=self.top_k, candidates=self.candidates,
                                       refresh=RefreshPolicy.parse(self.refresh),
                                       min_engagements=self.min_engagements, ttl_s=self.ttl_s,
                                       max_seen=self.max_seen,
                                       summary_lane=self.summary_lane,
                                       lane=LaneLimits(max_jobs=self.lane_max_jobs, max_bytes=self.lane_max_bytes,
                                                       batch=self.lane_batch),
                                       model_version=model_version, **over)
