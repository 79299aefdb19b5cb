"""The README's generated sections: the one rule for replacing the text between
`<!-- name:start -->` and `<!-- name:end -->`, used by every bench/report_*.py.

It lives in the installed project because bench/ is a folder of scripts, not a package: four
scripts can share a function only through something they all import without path tricks. It is
plain text handling (no Kafka, no model), so any layer could use it; only bench/ does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of section `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def splice_section(readme: Path, name: str, body: str, *, after: str | None = None,
                   before: str | None = None) -> None:
    """Write `body` into readme between section `name`'s markers (start marker, newline, body,
    end marker), keeping everything around them byte for byte.

    A section whose markers are missing (or a readme that does not exist) gets an empty pair
    first: right after the text `after` (a blank line between), else right before the text
    `before` (a blank line between), else at the end after one blank line."""
    start, end = markers(name)
    text = readme.read_text() if readme.exists() else ""
    if start not in text or end not in text:
        text = _with_empty_pair(text, start, end, after, before)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{body}{end}{tail}")


def _with_empty_pair(text: str, start: str, end: str, after: str | None, before: str | None) -> str:
    if after is not None and after in text:
        return text.replace(after, f"{after}\n\n{start}\n{end}", 1)
    if before is not None and before in text:
        return text.replace(before, f"{start}\n{end}\n\n{before}", 1)
    return text.rstrip("\n") + f"\n\n{start}\n{end}\n"


def cell(value: object, fmt: str = ".1f", missing: str = "-") -> str:
    """A number formatted for a table cell; `missing` for anything that is not a number."""
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else missing


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table (header, rule, one line per row), ending with a newline."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
