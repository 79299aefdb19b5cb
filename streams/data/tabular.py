"""Line-numbered readers of text inputs: RecBole atomic, MIND TSV, CSV, and JSON Lines (plain
or gzipped, Goodreads)."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from streams.data.records import Problems
from streams.errors import DataError

logger = logging.getLogger(__name__)


GZIP_MAGIC = b"\x1f\x8b"


def open_text(path: Path) -> TextIO:
    """Open a UTF-8 text file, gunzipping it when it starts with the gzip magic bytes (whatever
    its name), or raise DataError naming it."""
    try:
        with Path(path).open("rb") as fh:
            zipped = fh.read(2) == GZIP_MAGIC
        if zipped:
            return gzip.open(path, "rt", encoding="utf-8", newline="")
        return Path(path).open(encoding="utf-8", newline="")
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e


def _json_object(line: str) -> tuple[dict[str, Any] | None, str]:
    """(object, "") or (None, why the line is not a JSON object)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON ({e.msg})"
    return (obj, "") if isinstance(obj, dict) else (None, "expected a JSON object")


def iter_json_lines(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line of a JSON Lines file, plain or gzipped; bad lines
    go to `problems`, a truncated or corrupt file raises DataError naming the line."""
    lineno = 0
    with open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                obj, why = _json_object(line)
                if obj is None:
                    problems.bad(path, lineno, "malformed line", why)
                    continue
                yield lineno, obj
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{lineno + 1}: not UTF-8 text ({e.reason})") from e
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}:{lineno + 1}: cannot read: {e}") from e


def iter_atomic(path: Path, problems: Problems, required: tuple[str, ...]
                ) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a RecBole atomic file: header `name:type` tab-separated; types dropped."""
    with open_text(path) as fh:
        try:
            header = fh.readline().rstrip("\r\n").split("\t")
            names = [h.split(":", 1)[0] for h in header]
            missing = [r for r in required if r not in names]
            if missing:
                raise DataError(f"{path}:1: missing field: header lacks column(s) {', '.join(missing)}")
            for lineno, line in enumerate(fh, 2):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                cells = line.split("\t")
                if len(cells) != len(names):
                    problems.bad(path, lineno, "malformed line",
                                 f"expected {len(names)} tab-separated fields, got {len(cells)}")
                    continue
                yield lineno, dict(zip(names, cells, strict=True))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason})") from e


def iter_tsv(path: Path, problems: Problems, names: tuple[str, ...], min_fields: int
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a headerless TSV (MIND); missing trailing fields read as ''."""
    with open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                cells = line.split("\t")
                if len(cells) < min_fields or len(cells) > len(names):
                    problems.bad(path, lineno, "malformed line",
                                 f"expected {min_fields}-{len(names)} tab-separated fields, got {len(cells)}")
                    continue
                cells += [""] * (len(names) - len(cells))
                yield lineno, dict(zip(names, cells, strict=True))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason})") from e


def iter_csv(path: Path, problems: Problems, delimiter: str = ","
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header line; line numbers are physical lines of the file."""
    with open_text(path) as fh:
        try:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise DataError(f"{path}:1: missing field: empty file, no header line") from None
            while True:
                lineno = reader.line_num + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    problems.bad(path, lineno, "malformed line", f"bad CSV ({e})")
                    continue
                if not cells or not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    problems.bad(path, reader.line_num, "malformed line",
                                 f"expected {len(header)} fields, got {len(cells)}")
                    continue
                yield reader.line_num, dict(zip(header, cells, strict=True))
        except csv.Error as e:
            raise DataError(f"{path}: malformed line: bad CSV header ({e})") from e
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason})") from e
