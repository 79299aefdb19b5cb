"""`threadrec worker`: run one stream worker (engagements -> recommendations) against a broker."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from streams.cli.flags import add_flags, add_kafka_flags, given, kafka_from_args
from streams.engine.config import REFRESH_MODES, EngineConfig, LaneLimits
from streams.worker.config import ENGINE_FLAGS, WORKER_ENGINE, WorkerSettings

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("worker", help="run a stream worker: engagements in, recommendations out")
    p.add_argument("--loglevel", default="warn", help="faust worker log level (default warn)")
    add_kafka_flags(p)
    add_flags(p.add_argument_group("worker"), WorkerSettings, skip=("kafka", "limits"))
    add_engine_flags(p.add_argument_group("engine"))
    p.set_defaults(func=run)


def add_engine_flags(group: argparse._ArgumentGroup) -> None:
    """The worker's engine options (EngineConfig, LaneLimits) under their field names."""
    add_flags(group, EngineConfig, only=ENGINE_FLAGS, defaults=WORKER_ENGINE)
    add_flags(group, LaneLimits, dest_prefix="lane_", defaults=WORKER_ENGINE.lane)
    modes = "|".join(m + {"every_n": ":N", "period": ":S"}.get(m, "") for m in REFRESH_MODES)
    group.add_argument("--refresh", default=None, metavar="POLICY",
                       help=f"summary refresh: {modes} (default: {WORKER_ENGINE.refresh.text})")


def settings_given(args: argparse.Namespace) -> dict[str, Any]:
    """WorkerSettings keyword arguments of the flags that were given (engine options by name)."""
    engine = {k: v for k, v in given(args, EngineConfig).items() if k in ENGINE_FLAGS}
    lane = {"lane_" + k: v for k, v in given(args, LaneLimits, dest_prefix="lane_").items()}
    refresh = {"refresh": args.refresh} if args.refresh is not None else {}
    return {**given(args, WorkerSettings), **engine, **lane, **refresh}


def run(args: argparse.Namespace) -> int:
    """Build settings, load the model, create topics, then run the faust worker until stopped."""
    import faust

    from model.device import set_torch_threads
    from streams.kafka.replay import ensure_topic_set
    from streams.worker.agents import register_agents
    from streams.worker.app import create_app
    from streams.worker.expiry import register_expiry_sweep
    from streams.worker.runtime import build_runtime, load_model
    from streams.worker.stats import register_metrics, register_stats
    from streams.worker.topics import declare_tables, declare_topics

    settings = WorkerSettings(kafka=kafka_from_args(args), **settings_given(args))
    logger.info("torch threads: %d", set_torch_threads(settings.torch_threads))
    # replication decided from the cluster once, for our topics and faust's changelogs alike
    settings = settings.model_copy(update={"kafka": ensure_topic_set(settings.kafka)})
    model, version = load_model(settings)
    logger.info("model %s on %s", version, model.device)
    runtime = build_runtime(settings, model, version)
    app = create_app(settings)
    topics = declare_topics(app, settings.kafka)
    tables = declare_tables(app, settings.kafka, settings.rocks_memory)
    register_agents(app, topics, tables, runtime)
    register_metrics(app, runtime, settings.kafka.topic("engagements"), settings.stats_every_s)
    register_expiry_sweep(app, runtime, tables, settings.kafka.topic("engagements"))
    runtime.metrics.model_version.labels(version=version).set(1)
    if settings.metrics_port is not None:
        runtime.metrics.serve(settings.metrics_host, settings.metrics_port)
    if settings.stats_file is not None:
        register_stats(app, runtime, settings.stats_file, settings.stats_every_s)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()  # handles SIGTERM: stops agents, commits, flushes
    return 0
