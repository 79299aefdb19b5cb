"""The `threadrec` command line: one argparse tree, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from streams.errors import ThreadrecError

# One module per subcommand; each defines register(subparsers).
COMMAND_MODULES = [
    "streams.cli.broker",
    "streams.cli.data",
    "streams.cli.replay",
    "streams.cli.train",
    "streams.cli.evaluate",
    "streams.cli.seeds",
    "streams.cli.worker",
    "streams.cli.trainer",
    "streams.cli.demo",
    # -- subcommand modules: add new ones above this line --
]


class _Parser(argparse.ArgumentParser):
    """Prints one clear line (plus usage hint) on bad arguments; exits 2."""

    def error(self, message: str) -> None:  # noqa: D401
        self.exit(2, f"threadrec: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand registered."""
    parser = _Parser(prog="threadrec", description="Streaming real-time EmbSum recommender.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ThreadrecError as e:
        print(f"threadrec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("threadrec: interrupted", file=sys.stderr)
        return 130
