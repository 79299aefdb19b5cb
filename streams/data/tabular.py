"""Line-numbered readers for tab- and comma-separated inputs (RecBole atomic, MIND, CSV)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

from streams.data.records import Problems
from streams.errors import DataError

logger = logging.getLogger(__name__)


def open_text(path: Path):
    """Open a UTF-8 text file or raise DataError naming it."""
    try:
        return Path(path).open(encoding="utf-8", newline="")
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e


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
