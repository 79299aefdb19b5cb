"""Goodreads book records (UCSD `goodreads_books*.json`) -> catalog items: title, a shortened
description and a genre-like shelf as category."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streams.data.records import BadRecord, Item, Problems, parse_id, parse_text, require
from streams.data.tabular import iter_json_lines
from streams.progress import progress

DESCRIPTION_CHARS = 600  # ~120 tokens: above the model's 64-token item text, room for larger ones
# Shelf words that say how a reader files a book, not what it is about (to-read, owned, 2017...).
NOT_GENRE_WORDS = frozenset({
    "read", "reads", "reading", "reread", "currently", "owned", "own", "i", "my", "mine", "have",
    "kindle", "kobo", "nook", "ebook", "ebooks", "e", "pdf", "epub", "audio", "audible",
    "audiobook", "audiobooks", "library", "borrowed", "wishlist", "wish", "buy", "bought", "tbr",
    "default", "dnf", "unread", "finish", "finished", "unfinished", "abandoned", "hold", "maybe",
    "someday", "later", "priority", "favorites", "favourites", "favorite", "favourite", "faves",
    "netgalley", "arc", "giveaway", "giveaways", "calibre", "shelf", "bookshelf", "club",
    "challenge", "list", "series", "collection", "recommended"})
_WORD_SPLIT = re.compile(r"[-_\s]+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s")


def genre_like(shelf: str) -> bool:
    """False for organising shelves: any listed word, or a digit (years: 'read-2016')."""
    name = shelf.lower()
    return not (any(c.isdigit() for c in name) or set(_WORD_SPLIT.split(name)) & NOT_GENRE_WORDS)


def _shelf(entry: Any) -> tuple[int, str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise BadRecord("wrong type", f"popular_shelves entry {entry!r} is not {{'count', 'name'}}")
    try:
        return int(entry.get("count", 0)), entry["name"].strip()
    except (TypeError, ValueError):
        raise BadRecord("wrong type", f"shelf count {entry.get('count')!r} is not a number") from None


def genre_shelf(shelves: Any) -> str:
    """The most-shelved genre-like shelf name ('' when none); the first of equal counts."""
    if shelves is None:
        return ""
    if not isinstance(shelves, list):
        raise BadRecord("wrong type", f"popular_shelves must be a list, got {shelves!r:.60}")
    best = (0, "")
    for count, name in map(_shelf, shelves):
        if name and count > best[0] and genre_like(name):
            best = (count, name)
    return best[1]


def shorten(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """Whitespace collapsed; above limit, cut after the last sentence in the second half of the
    limit, else at the last word, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() > limit // 2]
    if ends:
        return head[:ends[-1]].rstrip()
    return head[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _author_ids(authors: Any) -> list[str]:
    if authors is None:
        return []
    if not isinstance(authors, list) or not all(isinstance(a, dict) for a in authors):
        raise BadRecord("wrong type", f"authors must be a list of objects, got {authors!r:.60}")
    return [str(a["author_id"]) for a in authors if a.get("author_id") not in (None, "")]


def book_item(book_id: str, row: dict[str, Any], description_chars: int = DESCRIPTION_CHARS) -> Item:
    """One catalog item; ts is set later (first engagement)."""
    title = (parse_text(row.get("title"), "title").strip()
             or parse_text(row.get("title_without_series"), "title_without_series").strip())
    if not title:
        raise BadRecord("missing field", "missing field 'title'")
    body = shorten(parse_text(row.get("description"), "description"), description_chars)
    extra = {"publication_year": str(row.get("publication_year") or ""),
             "authors": _author_ids(row.get("authors"))}
    return Item(book_id, title, body=body, category=genre_shelf(row.get("popular_shelves")),
                extra=extra)


def load_books(path: Path, wanted: Iterable[str], problems: Problems,
               description_chars: int = DESCRIPTION_CHARS) -> dict[str, Item]:
    """Items of the wanted book ids (the others are read past, not validated)."""
    wanted, items = set(wanted), {}
    for lineno, row in progress(iter_json_lines(path, problems), f"read {Path(path).name}"):
        try:
            book_id = parse_id(require(row, "book_id"), "book_id")
            if book_id not in wanted:
                continue
            if book_id in items:
                raise BadRecord("duplicate item", f"book {book_id!r} appears twice")
            items[book_id] = book_item(book_id, row, description_chars)
        except BadRecord as e:
            problems.bad(path, lineno, e.reason, str(e))
    return items
