"""The one place that turns items into text (model training, inference and streams use it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FIELD_SEP = ". "
ITEM_SEP = " | "


def item_text(item: Mapping[str, Any]) -> str:
    """Title, category and body joined; empty fields skipped."""
    parts = [str(item.get(k) or "").strip() for k in ("title", "category", "body")]
    return FIELD_SEP.join(p.rstrip(".") for p in parts if p)


def session_text(items: Iterable[Mapping[str, Any]]) -> str:
    """A session's items' texts concatenated in engagement order."""
    return ITEM_SEP.join(item_text(it) for it in items)
