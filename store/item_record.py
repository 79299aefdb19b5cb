"""Item records (text, category, CPE, retrieval vector) and their binary codec."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np

from .binary import Reader, Writer, open_frame, values_equal

logger = logging.getLogger(__name__)

ITEM_MAGIC = b"TRIT"
ITEM_FORMAT = 1


@dataclass(eq=False)
class ItemRecord:
    """One catalogue item as the online path needs it."""

    item_id: str
    text: str = ""
    category: str = ""
    cpe: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))  # [n, d] float16
    vector: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [d] float32
    ts: float = 0.0

    @cached_property
    def text_key(self) -> int:
        """64-bit hash of `text` (its part of a session's encoder input); once per decoded record."""
        return hash_text(self.text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ItemRecord):
            return NotImplemented
        return all(
            values_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )


def hash_text(text: str) -> int:
    """64-bit hash of an item's text: equal texts, equal keys (an edit changes it, a re-publish not)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=b"item-text").digest()
    return int.from_bytes(digest, "little")


def encode_item_record(item: ItemRecord) -> bytes:
    """Encode an ItemRecord to bytes (format ITEM_FORMAT)."""
    w = Writer()
    write_item_fields(w, item)
    return w.frame(ITEM_MAGIC, ITEM_FORMAT)


def write_item_fields(w: Writer, item: ItemRecord) -> None:
    """An item's fields in the order every item codec keeps them (store/item_vector.py too)."""
    w.pack("d", item.ts)
    w.text(item.item_id)
    w.text(item.text)
    w.text(item.category)
    w.array(item.cpe, "<f2")
    w.array(item.vector, "<f4")


def read_item_fields(r: Reader) -> ItemRecord:
    """The fields write_item_fields wrote."""
    (ts,) = r.unpack("d")
    return ItemRecord(item_id=r.text(), text=r.text(), category=r.text(),
                      cpe=r.array("<f2", 2), vector=r.array("<f4", 1), ts=ts)


def decode_item_record(data: bytes) -> ItemRecord:
    """Decode bytes from encode_item_record; raises StateCodecError on anything invalid."""
    _, r = open_frame(data, ITEM_MAGIC, {ITEM_FORMAT}, "item record")
    item = read_item_fields(r)
    r.finish()
    return item
