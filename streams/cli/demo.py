"""`threadrec demo`: bundled broker + a real worker + the held-out period replayed, with a report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="end-to-end demo: broker, worker, replay, live recommendations, report")
    p.add_argument("--data", type=Path, help="prepared data dir (default: MovieLens-100K in data/movielens)")
    p.add_argument("--checkpoint", type=Path,
                   help="EmbSum checkpoint (default: quick one cached under checkpoints/demo-quick/)")
    p.add_argument("--events", type=int, default=1000, help="held-out engagements to replay (default 1000)")
    p.add_argument("--holdout", type=int, help="size of the held-out period (default 5%% of engagements)")
    p.add_argument("--rate", type=float, default=10.0,
                   help="offered load in engagements/s (default 10; 0 = as fast as possible)")
    p.add_argument("--quick-minutes", type=float, default=4.0, help="training budget of the quick checkpoint")
    p.add_argument("--refresh", default="session_close",
                   help="worker summary refresh policy (default session_close; every_event is ~6x slower on CPU)")
    p.add_argument("--batch-size", type=int, default=64, help="worker micro-batch size")
    p.add_argument("--partitions", type=int, default=2, help="partitions per topic")
    p.add_argument("--device", help="torch device for the worker (default: CUDA when present)")
    p.add_argument("--bootstrap", help="use this broker instead of starting the bundled one")
    p.add_argument("--broker-kind", choices=["kafka", "tansu"], default="tansu",
                   help="client quirks for --bootstrap")
    p.add_argument("--workdir", type=Path, default=Path("runs/demo"), help="worker log and scratch space")
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--plot", type=Path, help="write the latency histogram here (PNG)")
    p.add_argument("--no-live", action="store_true", help="no live recommendation panels")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from streams.demo.report import plot_latency, write_json
    from streams.demo.run import DemoError, DemoOptions, run_demo
    from streams.demo.view import report_table
    from streams.errors import ThreadrecError

    opts = DemoOptions(data=args.data, checkpoint=args.checkpoint, events=args.events,
                       holdout=args.holdout, rate=args.rate or None, quick_minutes=args.quick_minutes,
                       refresh=args.refresh, batch_size=args.batch_size, partitions=args.partitions,
                       device=args.device, bootstrap=args.bootstrap, broker_kind=args.broker_kind,
                       workdir=args.workdir, live=not args.no_live)
    console = Console()
    try:
        report = run_demo(opts, console)
    except ThreadrecError:
        raise
    except Exception as e:  # anything else still ends as one line (details with -v)
        logger.debug("demo failed", exc_info=True)
        raise DemoError(f"{type(e).__name__}: {e}") from e
    console.print()
    console.print(report_table(report))
    if args.json:
        write_json(report, args.json)
        console.print(f"report written to {args.json}")
    if args.plot:
        plot_latency(report, args.plot)
        console.print(f"latency plot written to {args.plot}")
    return 0
