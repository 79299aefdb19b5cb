"""CLI flags generated from the config classes, so every default and its doc live once.

A field `batch_size: int = 64  # most engagements per micro-batch` becomes
`--batch-size N` with that comment as its help and "(default: 64)" read from the class. A flag
left out stays None, and the class (or its environment variables) supplies the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal

SCALARS = (int, float, str, Path)


def _comments(cls: type) -> dict[str, str]:
    """The trailing (or preceding) `# ...` comment of each field in the class source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").strip())
            continue
        name = stripped.split(":", 1)[0].strip() if ":" in stripped else ""
        tail = _trailing_comment(line)
        if name.isidentifier():
            text = tail or " ".join(a for a in above if not a.startswith("---"))
            if text:
                out[name] = text
        above = []
    return out


def _trailing_comment(line: str) -> str:
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return ""
    return next((t.string.lstrip("# ").strip() for t in toks if t.type == tokenize.COMMENT), "")


def _fields(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, annotation, default) of a dataclass or pydantic model."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return [(f.name, hints[f.name], f.default) for f in dataclasses.fields(cls)]
    return [(name, f.annotation, f.get_default(call_default_factory=True))
            for name, f in cls.model_fields.items()]


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; other unions and containers are left as they are."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _kwargs(annotation: Any) -> dict[str, Any] | None:
    """argparse options for a field type, or None when the CLI cannot set it."""
    t = _unwrap(annotation)
    if t is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(t) is Literal:
        return {"choices": list(typing.get_args(t))}
    if t in SCALARS:
        return {"type": t, "metavar": t.__name__.upper() if t is not Path else "PATH"}
    return None


def add_flags(parser: argparse._ActionsContainer, cls: type, *, only: tuple[str, ...] = (),
              skip: tuple[str, ...] = (), dest_prefix: str = "", defaults: Any = None) -> None:
    """One `--field-name` flag per settable field of `cls` (all of them, or `only`); with a
    dest_prefix "sasrec_" the flags read `--sasrec-field-name`, so two classes may share names.
    `defaults`, an instance of cls, supplies the defaults shown where they differ from the class's."""
    docs = _comments(cls)
    for name, annotation, default in _fields(cls):
        if name in skip or (only and name not in only):
            continue
        default = default if defaults is None else getattr(defaults, name)
        kw = _kwargs(annotation)
        if kw is None:
            continue
        shown = "" if default is None or default is dataclasses.MISSING else \
            f" (default: {default!r})" if default == "" else f" (default: {default})"
        parser.add_argument("--" + (dest_prefix + name).replace("_", "-"), dest=dest_prefix + name, default=None,
                            help=(docs.get(name, "") + shown).strip().replace("%", "%%"), **kw)


def given(args: argparse.Namespace, cls: type, dest_prefix: str = "") -> dict[str, Any]:
    """The fields of `cls` whose flags were given on the command line."""
    out = {}
    for name, _, _ in _fields(cls):
        value = getattr(args, dest_prefix + name, None)
        if value is not None:
            out[name] = value
    return out


def add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    """Broker, topic and security flags (KafkaSettings), each overriding its THREADREC_* variable."""
    from streams.kafka.settings import KafkaSettings

    add_flags(parser.add_argument_group("kafka"), KafkaSettings)


def kafka_from_args(args: argparse.Namespace):
    """KafkaSettings from env, with the flags that were given taking precedence."""
    from streams.kafka.settings import KafkaSettings

    return KafkaSettings(**given(args, KafkaSettings))
