"""`threadrec replay`: produce a prepared data directory into the items/engagements topics."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streams.cli.flags import add_kafka_flags, kafka_from_args

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("replay", help="replay prepared data into Kafka in event-time order")
    p.add_argument("source", nargs="+", type=Path, metavar="DIR_OR_FILES",
                   help="a prepared directory, or items/engagements .jsonl files")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, help="replay event time X times faster than real")
    pace.add_argument("--rate", type=float, help="at most N events per second")
    p.add_argument("--limit", type=int, help="stop after N engagements")
    p.add_argument("--from-split", choices=["all", "train", "valid", "test"], default="all",
                   help="which engagements of a prepared dir: all (engagements.jsonl) or one split")
    p.add_argument("--keep-extra", action="store_true",
                   help="keep extra fields (e.g. rating) in values; default: contract fields only")
    p.add_argument("--skip-bad", action="store_true", help="skip bad lines, report counts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_kafka_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.kafka.replay import replay_to_broker

    settings = kafka_from_args(args)
    source = args.source[0] if len(args.source) == 1 else args.source
    report = replay_to_broker(source, settings, speed=args.speed, rate=args.rate, limit=args.limit,
                              split=args.from_split, keep_extra=args.keep_extra,
                              skip_bad=args.skip_bad, progress=not args.no_progress)
    for line in report.lines():
        print(line)
    return 0
