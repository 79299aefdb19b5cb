"""CLI subcommands: each module defines `register(subparsers)` that adds its parser
and sets `func=run` on it; `streams.cli` lists the modules."""
