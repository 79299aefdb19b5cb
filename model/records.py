"""The prepared data format's shared parts (docs/data-format.md): engagement kinds and the
JSON Lines reader and writer. streams/ imports these; this module imports nothing of streams/."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from durable import atomic_writer
from model.errors import DataDirError

KINDS = ("click", "view", "like", "share", "impression")
ENGAGED_KINDS = frozenset(KINDS) - {"impression"}  # "impression" = shown, not engaged


class BadLine(ValueError):
    """A non-blank line of a JSON Lines file that is not a JSON object."""

    def __init__(self, lineno: int, detail: str) -> None:
        super().__init__(f"line {lineno}: {detail}")
        self.lineno, self.detail = lineno, detail


def iter_jsonl(path: Path, on_bad: Callable[[int, str], None] | None = None,
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line. A bad line goes to on_bad(lineno, detail) and is
    skipped, or raises BadLine without on_bad; OSError and UnicodeDecodeError propagate."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                detail = f"invalid JSON ({e.msg})"
            else:
                if isinstance(obj, dict):
                    yield lineno, obj
                    continue
                detail = "expected a JSON object"
            if on_bad is None:
                raise BadLine(lineno, detail)
            on_bad(lineno, detail)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All objects of a JSON Lines file; a missing file or bad line raises DataDirError naming it."""
    if not path.exists():
        raise DataDirError(f"missing file {path}")
    try:
        return [row for _, row in iter_jsonl(path)]
    except BadLine as e:
        raise DataDirError(f"{path}:{e.lineno}: {e.detail}") from e


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """One object per line, UTF-8; written to a temp name then renamed, so a crash never leaves
    a half file that looks done."""
    with atomic_writer(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")
