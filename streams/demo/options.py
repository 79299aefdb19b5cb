"""What `threadrec demo` runs (no model or worker imports here: the CLI builds the demo's flags
from these fields without loading them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from model.config import InferenceMode


@dataclass
class DemoOptions:
    """What `threadrec demo` runs; its flags are generated from these fields (cli/flags.py)."""

    data: Path | None = None  # prepared data dir (none: MovieLens-100K in data/movielens)
    checkpoint: Path | None = None  # EmbSum checkpoint (none: quick one cached under checkpoints/)
    events: int = 1000  # held-out engagements to replay
    holdout: int | None = None  # size of the held-out period (none: 5% of the engagements)
    rate: float | None = 10.0  # offered load, engagements/s (0: as fast as possible)
    quick_minutes: float = 4.0  # training budget of the quick checkpoint
    # worker summary refresh policy (every_event is ~6x slower on CPU)
    refresh: str = "session_close"
    summary_lane: bool = True  # summaries off the recommendation path (the worker's separate lane)
    batch_size: int = 64  # worker micro-batch size
    batch_within_s: float | None = None  # worker's longest wait to fill a micro-batch (none: the worker's)
    partitions: int = 2  # partitions per topic
    device: str | None = None  # torch device for the worker (none: CUDA when present)
    inference: InferenceMode = "auto"  # the worker's model numerics (model/numerics.py)
    bootstrap: str | None = None  # use this broker instead of starting the bundled one
    broker_kind: Literal["kafka", "tansu"] = "tansu"  # client quirks for --bootstrap
    workdir: Path = Path("runs/demo")  # worker log and scratch space
    featured: int = 3  # users shown live
    live: bool = True  # live recommendation panels
    stall_s: float = 120.0  # give up when nothing new arrives for this long after the replay
    metrics_port: int | None = None  # the worker's Prometheus port (none: a free one)
    # torch threads of the worker and the trainer: 1, as they share the cores with the broker, the
    # replay and each other (none: every core each process may use)
    torch_threads: int | None = 1
    trainer: bool = True  # run `threadrec trainer` beside the worker (a hybrid checkpoint's ID rows)
    # the trainer's sync interval; short because the replay compresses event time
    trainer_sync_s: float = 10.0
    trainer_sync_clock: Literal["wall", "event"] = "wall"  # clock of trainer_sync_s
    # the trainer learns an engagement only after the worker committed past it (no leakage)
    trainer_follow: bool = True
    # engagements per trainer step (its learn_block): 1, a step per engagement as soon as the
    # worker served it; a block waits until it is full, and at the replay's 10/s a partition with
    # an eighth of the events fills 16 in ~12 s, which cost most of the demo's online lift
    # (README, "MovieLens-100K against the code before issue 26"); batching pays at the
    # trainer's own rates, not here
    trainer_learn_block: int = 1
    # more `threadrec trainer` flags by field name, e.g. {"loss": "full"} (the trainer's defaults otherwise)
    trainer_flags: dict = field(default_factory=dict)
    curve_chunks: int = 5  # the report's learning curve: online Recall@10 per this many chunks
