"""The optimisation settings of EmbSum's training (no torch here: the CLI builds its flags
from these fields without loading the model stack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainOptions:
    """Optimisation settings (the model's own knobs live in EmbSumConfig)."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 5e-5  # backbone learning rate
    head_lr_mult: float = 10.0  # poly codes start random: give the heads a larger rate
    warmup: float = 0.1  # fraction of steps of linear warm-up
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_every: int = 200  # validate + checkpoint every this many steps (0 = only at the end)
    eval_users: int = 200  # impressions_valid users scored at each validation
    seed: int = 0
    device: str | None = None
    # wall-clock budget (validations included): training stops early, validates and saves once
    # more before the budget runs out; the lr schedule then follows the elapsed fraction of it
    max_minutes: float | None = None
    select_metric: str = "auc"  # valid metric (higher = better) that picks out/best
    # "example": batches drawn uniformly over (user, position) examples, so heavy users dominate;
    # "user": a user uniformly, then one of its positions, as evaluation weighs every user once
    sample_by: Literal["example", "user"] = "example"
    # > 0: train only on engagements at or before the time that leaves the data's last N engagements
    # (every split) after it, so an online replay of that period uses a model that never saw it
    holdout_events: int = 0
    # autocast dtype: auto = bf16 on CUDA (fp16 + loss scaling where bf16 is missing) and on CPUs
    # with native bf16 (AVX512-BF16/AMX, about 1.3x faster steps here), float32 elsewhere
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
