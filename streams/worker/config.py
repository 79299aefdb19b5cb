"""One settings object for a worker: broker, model, batching, engine policy, local data, web."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.config import EmbSumConfig, InferenceMode
from store.config import ITEM_CACHE_BYTES, IndexConfig, RocksMemory
from streams.engine.config import EngineConfig, LaneLimits, RefreshPolicy
from streams.engine.pacer import ApplyPacer
from streams.kafka.messages import MessageLimits
from streams.kafka.settings import KafkaSettings

# a worker's engine: the engine's defaults, except that summaries are refreshed when a session
# closes and generated in the summary lane, off the recommendation path (--no-summary-lane: inside
# the engagement's round, as the parity tests run it)
WORKER_ENGINE = EngineConfig(refresh=RefreshPolicy("session_close"), summary_lane=True)
# EngineConfig fields a worker sets under their own names: flags (--top-k), env (THREADREC_TOP_K)
# and keyword arguments; also `refresh` (as RefreshPolicy.parse reads it) and the lane's bounds
# as lane_<field> (--lane-max-jobs, THREADREC_LANE_MAX_JOBS)
ENGINE_FLAGS = ("top_k", "candidates", "query_codes", "min_engagements", "max_seen", "ttl_s", "summary_lane")
LANE_FLAGS = tuple("lane_" + f.name for f in dataclasses.fields(LaneLimits))


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
    engine: EngineConfig = WORKER_ENGINE  # set by field name (ENGINE_FLAGS above), not as one value
    lane_nice: int = Field(10, ge=0, le=19)  # the lane's thread runs this much nicer: cores go to recommendations first
    # the lane starts its summaries between engagement batches, or once its oldest job waited this long (s)
    lane_yield_s: float = Field(2.0, ge=0)
    # the lane's runs beside batches (its jobs overdue) take at most this share of the time (1: no rest)
    lane_busy_share: float = Field(0.25, gt=0, le=1)
    session_gap_s: float | None = None  # gap that opens a new session, s (none: the checkpoint's)
    session_max_items: int | None = None  # items that close a session (none: the checkpoint's)
    max_sessions: int | None = None  # sessions kept per user, g (none: the checkpoint's)
    sweep_every_s: float = Field(60.0, gt=0)  # how often an expiry sweep pass starts (wall time)
    # a pass reads this many user states per slice (header peeks on a thread) ...
    sweep_slice_keys: int = Field(256, ge=1)
    # ... and waits this long (s) between slices, so the event loop is never held for a pass
    sweep_slice_every_s: float = Field(0.02, gt=0)
    # ... or longer: a slice's read may take this share of the time at most (its peeks hold the
    # GIL on their thread, and an engine thread waiting for it stalls: at 100k users a pass
    # without this ran beside a 25/s replay with p50 495 ms, 326 ms with no sweep)
    sweep_share: float = Field(0.05, gt=0, le=1)
    index_snapshot_every_s: float = Field(300.0, gt=0)  # how often the FAISS index is saved
    data_dir: Path = Path("threadrec-data")  # faust tables, item store, token cache
    token_cache_bytes: int = Field(512 * 1024 * 1024, ge=1)  # bound of the local token-state cache
    item_cache_bytes: int = Field(ITEM_CACHE_BYTES, ge=0)  # decoded item records kept in memory
    # vectors an IVF query scans at 1M items (its lists probed), by the cube root of the items
    # elsewhere (IndexConfig.scan_rows_exponent): recall against time, per query code (10 per
    # engagement); bench/results/index.json has recall and ms per budget at 88k and 1M items
    index_scan_rows: int = Field(IndexConfig.scan_rows, ge=1)
    # memory of each RocksDB database (faust tables per partition, item store, token cache)
    rocksdb_memtable_bytes: int = Field(16 * 1024 * 1024, ge=1024 * 1024)  # one write buffer
    rocksdb_block_cache_bytes: int = Field(32 * 1024 * 1024, ge=0)  # LRU block cache
    item_wait_s: float = Field(5.0, ge=0)  # one wait of an unknown item for the items replica
    # an engagements partition that delivered nothing this long (s) while its log holds records
    # past its recorded offset is re-read from the broker (records faust dropped at its end)
    tail_wait_s: float = Field(10.0, gt=0)
    replica_wait_s: float = Field(900.0, gt=0)  # longest start-up wait for the replicas
    future_skew_s: float = Field(86_400.0, ge=0)  # an engagement ts may lead wall time by this
    # ... and lead its partition's highest accepted ts by this (a replay's gaps stay below it)
    watermark_skew_s: float = Field(30 * 86_400.0, ge=0)
    late_skew_s: float = Field(365 * 86_400.0, ge=0)  # ... and trail it by at most this
    # a parameters row more than this many syncs above the trainer's version is refused
    param_version_step: int = Field(1000, ge=1)
    # a sync of many rows (and a burst of item vectors, with its own measures) is applied in
    # slices, each one hold of the engine lock, and engagement batches waiting for the lock go
    # between them: a slice may take param_apply_share of an
    # engagement batch's time (moving average), at most param_apply_budget_ms, and takes as many
    # records as fit at the cost per record measured so far, at least 32 (the fixed cost of a
    # slice amortised) and at most param_apply_slice (streams/engine/pacer.py: ApplyPacer)
    param_apply_share: float = Field(ApplyPacer.share, gt=0)
    param_apply_budget_ms: float = Field(2.0, gt=0)
    param_apply_slice: int = Field(4096, ge=1)
    # rate floors (records/s) of those slices while serving: a saturated worker's batches run
    # to seconds, and the share alone then applied ~175 item vectors/s (a 300k-item doubling in
    # half an hour); the floor takes that rate x the cost per record of serving's time
    item_apply_min_per_s: float = Field(1000.0, ge=0)
    param_apply_min_per_s: float = Field(1000.0, ge=0)
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
        over = {k: getattr(self, k) for k in ("session_gap_s", "session_max_items", "max_sessions")
                if getattr(self, k) is not None}
        return self.engine.on_model(model_cfg, model_version=model_version, **over)

    @model_validator(mode="before")
    @classmethod
    def _engine_by_field(cls, data: Any) -> Any:
        """Engine options given by field name (keyword, else THREADREC_* variable) over `engine`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        names = (*ENGINE_FLAGS, "refresh", *LANE_FLAGS)
        given = {n: data.pop(n) for n in names if n in data}
        for n in names:
            if n not in given and f"THREADREC_{n.upper()}" in os.environ:
                given[n] = os.environ[f"THREADREC_{n.upper()}"]
        if given:
            data["engine"] = _engine_fields(data.get("engine", WORKER_ENGINE), given)
        return data


def _engine_fields(engine: EngineConfig | dict, given: dict[str, Any]) -> dict[str, Any]:
    """`engine`'s fields (a dict for pydantic to check) with the given ones in their place."""
    fields = dict(engine) if isinstance(engine, dict) else \
        {f.name: getattr(engine, f.name) for f in dataclasses.fields(engine)}
    lane = fields.get("lane", WORKER_ENGINE.lane)
    lane = dict(lane) if isinstance(lane, dict) else dataclasses.asdict(lane)
    for name, value in given.items():
        if name.startswith("lane_"):
            lane[name.removeprefix("lane_")] = value
        elif name == "refresh":
            fields[name] = RefreshPolicy.parse(value) if isinstance(value, str) else value
        else:
            fields[name] = value
    return {**fields, "lane": lane}
