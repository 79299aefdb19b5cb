"""One settings object for a worker: broker, model, batching, engine policy, local data, web."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.config import EmbSumConfig
from streams.engine.config import EngineConfig, RefreshPolicy
from streams.kafka.messages import MessageLimits
from streams.kafka.settings import KafkaSettings, add_kafka_arguments, kafka_settings_from_args


class WorkerSettings(BaseSettings):
    """Env THREADREC_* (e.g. THREADREC_BATCH_SIZE), CLI flags override (see worker_cmd)."""

    model_config = SettingsConfigDict(env_prefix="THREADREC_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    limits: MessageLimits = Field(default_factory=MessageLimits)  # env THREADREC_LIMIT_*
    app_id: str = "threadrec"  # consumer group; the topic prefix is prepended
    checkpoint: Path | None = None  # None: pretrained backbone with untrained heads (warned)
    device: str | None = None  # None: CUDA when present, else CPU
    batch_size: int = Field(64, ge=1)  # stream.take size
    batch_within_s: float = Field(0.2, gt=0)  # ... or whatever arrived within this time
    top_k: int = Field(10, ge=1)
    candidates: int = Field(50, ge=1)
    refresh: str = "every_event"  # every_event | never | session_close | every_n:N | period:S
    session_gap_s: float | None = None  # None: the checkpoint's config
    session_max_items: int | None = None
    max_sessions: int | None = None
    min_engagements: int = Field(1, ge=1)
    ttl_s: float = Field(30 * 86_400.0, gt=0)
    data_dir: Path = Path("threadrec-data")  # faust tables, item store, token cache
    token_cache_bytes: int = Field(512 * 1024 * 1024, ge=1)
    item_wait_s: float = Field(5.0, ge=0)  # how long an unknown item may wait for the items topic
    web_port: int | None = None  # None: faust's web server off
    stats_file: Path | None = None  # None: no stats file (streams/worker/stats.py)
    stats_every_s: float = Field(1.0, gt=0)

    @property
    def group_id(self) -> str:
        return f"{self.kafka.topic_prefix}{self.app_id}"

    def engine_config(self, model_cfg: EmbSumConfig, model_version: str) -> EngineConfig:
        """Engine options: the model's session rules unless overridden here."""
        over = {k: getattr(self, k) for k in ("session_gap_s", "session_max_items", "max_sessions")
                if getattr(self, k) is not None}
        return EngineConfig.from_model(model_cfg, top_k=self.top_k, candidates=self.candidates,
                                       refresh=RefreshPolicy.parse(self.refresh),
                                       min_engagements=self.min_engagements, ttl_s=self.ttl_s,
                                       model_version=model_version, **over)


_FLAGS = {  # flag -> (type, help)
    "checkpoint": (Path, "EmbSum checkpoint directory (default: pretrained heads, with a warning)"),
    "device": (str, "torch device, e.g. cuda:0 or cpu (default: CUDA when present)"),
    "data_dir": (Path, "local state: faust tables, item store, token cache"),
    "web_port": (int, "faust web server port (default: off)"),
    "batch_size": (int, "most engagements per micro-batch"),
    "batch_within_s": (float, "longest wait to fill a micro-batch (s)"),
    "top_k": (int, "recommendations per message"),
    "candidates": (int, "retrieved candidates before the exact rerank"),
    "refresh": (str, "summary refresh: every_event|never|session_close|every_n:N|period:S"),
    "session_gap_s": (float, "gap that opens a new session (s)"),
    "session_max_items": (int, "items that close a session"),
    "max_sessions": (int, "sessions kept per user (g)"),
    "min_engagements": (int, "engagements before personalising (else popularity)"),
    "ttl_s": (float, "event-time inactivity after which a user's state is dropped"),
    "item_wait_s": (float, "wait for the items topic when an engagement names an unknown item"),
    "stats_file": (Path, "rewrite this JSON file with the worker's counters (demo, benchmark)"),
    "stats_every_s": (float, "how often the stats file is rewritten (s)"),
    "app_id": (str, "faust app id / consumer group (topic prefix prepended)"),
}


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Kafka flags plus one flag per WorkerSettings field; each overrides its env variable."""
    add_kafka_arguments(parser)
    parser.add_argument("--partitions", type=int, help="partitions of created topics")
    g = parser.add_argument_group("worker")
    for name, (typ, help_) in _FLAGS.items():
        g.add_argument("--" + name.replace("_", "-"), type=typ, help=help_)


def worker_settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    """WorkerSettings from env, overridden by the flags that were given."""
    given = {k: v for k, v in vars(args).items() if k in _FLAGS and v is not None}
    return WorkerSettings(kafka=kafka_settings_from_args(args), **given)
