"""`threadrec demo`: bundled broker + a real worker + the held-out period replayed, with a report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streams.cli.flags import add_flags, given

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from streams.demo.options import DemoOptions

    p = subparsers.add_parser("demo", help="end-to-end demo: broker, worker, replay, live recommendations, report")
    add_flags(p, DemoOptions)
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--plot", type=Path, help="write the latency histogram here (PNG)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from streams.demo.report import plot_latency, write_json
    from streams.demo.run import DemoError, DemoOptions, run_demo
    from streams.demo.view import report_table
    from streams.errors import ThreadrecError

    opts = DemoOptions(**given(args, DemoOptions))
    if not opts.rate:
        opts.rate = None  # 0: as fast as possible
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
