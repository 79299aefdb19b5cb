"""`threadrec trainer`: learn the hybrid's ID rows from the engagements stream and publish
them to the `parameters` topic (docs/architecture.md, "Online training")."""

from __future__ import annotations

import argparse
import os

from streams.cli.flags import add_flags, add_kafka_flags, given, kafka_from_args
from streams.trainer.config import TrainerSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("trainer", help="online trainer: engagements in, ID rows to `parameters`")
    add_kafka_flags(p)
    add_flags(p.add_argument_group("trainer"), TrainerSettings, skip=("kafka", "limits"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create the topics it needs, then train until SIGTERM (last sync and snapshot on the way out)."""
    # before torch loads its OpenMP runtime: idle workers sleep instead of spinning; on 2 cores
    # shared with other processes, spinning made the trainer's batched steps 12x slower (365 vs
    # 4,600 engagements/s, bench/bench_trainer_scale.py at 10k rows); an explicit setting wins
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from streams.kafka.replay import ensure_topics
    from streams.trainer.loop import run_trainer

    settings = TrainerSettings(kafka=kafka_from_args(args), **given(args, TrainerSettings))
    ensure_topics(settings.kafka, [settings.kafka.topic(n) for n in ("engagements", "parameters")])
    run_trainer(settings)
    return 0
