"""One settings object for `threadrec trainer`: broker, checkpoint, learning, sync, snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.kafka.messages import MessageLimits
from streams.kafka.settings import KafkaSettings


class TrainerSettings(BaseSettings):
    """Env THREADREC_TRAINER_* (e.g. THREADREC_TRAINER_SYNC_EVERY_S); `threadrec trainer` flags,
    generated from these fields and their comments, override it."""

    model_config = SettingsConfigDict(env_prefix="THREADREC_TRAINER_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    limits: MessageLimits = Field(default_factory=MessageLimits)
    checkpoint: Path | None = None  # hybrid checkpoint whose ID half (tower, gate, rows) is trained
    app_id: str = "threadrec-trainer"  # consumer group (offsets mirrored for lag monitoring)
    data_dir: Path = Path("threadrec-trainer")  # ID rows (rocksdict), histories, snapshots
    sync_every_s: float = Field(60.0, gt=0)  # publish the rows touched since the last sync
    # clock of sync_every_s: wall seconds, or event seconds (a compressed replay)
    sync_clock: Literal["wall", "event"] = "wall"
    snapshot_every_s: float = Field(300.0, gt=0)  # wall seconds between snapshots
    batch_size: int = Field(256, ge=1)  # most engagements fetched per poll
    # sampled: in-batch positives plus a shared uniform sample, log-Q corrected (cost independent
    # of the catalogue); full: a softmax over every row (cost grows with it; for comparison)
    loss: Literal["sampled", "full"] = "sampled"
    negatives: int = Field(512, ge=0)  # uniform draws shared by one block of engagements (sampled loss)
    # engagements of a partition, aligned by offset (offset // learn_block), learned as one step
    # against one shared candidate table; a block is learned once all of it has been read, so the
    # last learn_block - 1 engagements of a quiet partition wait for the next ones
    learn_block: int = Field(256, ge=1)
    # a row stepped only as a negative is published once its vector moved by more than this share
    # of its norm at its last publish (engaged, history, new and removed rows always are; 0: every change)
    publish_threshold: float = Field(0.02, ge=0)
    impressions_kept: int = Field(20, ge=0)  # recent skipped impressions per user (hard negatives)
    lr: float = Field(0.001, gt=0)  # Adagrad learning rate of the rows
    # step on the term the workers serve (gate x tower logit); off: the bare tower logits
    served_loss: bool = True
    # also step the history rows the tower reads (the input side), not only the scored rows
    input_rows: bool = True
    min_count: int | None = None  # occurrences before an id gets a row (none: the checkpoint's)
    # event seconds without an event before a user's history is dropped (the workers' ttl_s rule
    # and default: the tower reads the same history on both sides); 0: never
    user_ttl_s: float = Field(30 * 86_400.0, ge=0)
    ttl_s: float = Field(0.0, ge=0)  # event seconds without an occurrence before a row expires (0: never)
    seed: int = 0  # negative sampling seed (per block: seed, partition, offset // learn_block)
    torch_threads: int | None = Field(None, ge=1)  # torch intra-op threads (none: every core this process may use)
    # train an engagement only after this consumer group (the serving workers) committed past it:
    # every recommendation is served before its engagement is learned (progressive evaluation)
    follow_group: str | None = None
    history_file: Path | None = None  # JSONL engagements loaded as history (no training) on a fresh start
    stats_file: Path | None = None  # rewrite this JSON file with the trainer's counters
    stats_every_s: float = Field(1.0, gt=0)  # how often the stats file is rewritten (s)

    @property
    def group_id(self) -> str:
        return f"{self.kafka.topic_prefix}{self.app_id}"
