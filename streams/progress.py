"""Progress bars for long reads, writes and replays: rich, on stderr, only on a terminal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from rich.console import Console
from rich.progress import track

T = TypeVar("T")


def progress(rows: Iterable[T], description: str, total: float | None = None, enabled: bool = True,
             transient: bool = True) -> Iterable[T]:
    """rows, with a bar on stderr while they are consumed (none when stderr is no terminal or
    not enabled); a transient bar disappears when done."""
    console = Console(stderr=True)
    return track(rows, description=description, total=total, console=console, transient=transient,
                 disable=not (enabled and console.is_terminal))
