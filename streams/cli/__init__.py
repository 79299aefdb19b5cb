"""The `threadrec` command line: the top layer; nothing imports it."""

from streams.cli.main import main

__all__ = ["main"]
