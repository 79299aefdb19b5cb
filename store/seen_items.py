"""What a user must never be recommended again: the kept history exactly, earlier items compactly.

A state remembers up to `max_seen` (1,000) distinct items trimmed from its kept history. As ids
they took 14-40 KB per user; `EarlierItems` keeps a 17-bit fingerprint of each (the low bits of
a 64-bit BLAKE2b hash) in generations, oldest first, each stored Elias-Fano coded: about 11 bits
an item, 1.4 KB for 1,000 (docs/architecture.md, "State that survives a restart").

False positives: an item the user never engaged with matches with probability
len(earlier) / 2^17, at most 0.76% at the default 1,000; it is then left out of that user's
recommendations. No false negatives within the bound. Generations hold ceil(remember / 4)
fingerprints; past `remember` the oldest loses its lowest fingerprints (a hash-chosen part)
first, so the most recent three quarters are always held and the size never exceeds `remember`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .binary import Reader, Writer
from .errors import StateCodecError

FINGERPRINT_BITS = 17
GENERATIONS = 4  # per `remember`: eviction is exact to a quarter of it


def item_hash(item_id: str) -> int:
    """64-bit BLAKE2b hash of the UTF-8 id; EarlierItems keeps its low bits."""
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest(), "little")


def fingerprints(ids: Iterable[str]) -> np.ndarray:
    """item_hash of each id (uint64), for vectorised checks (EarlierItems.holds)."""
    return np.array([item_hash(i) for i in ids], np.uint64)


@dataclass(frozen=True, eq=False)
class EarlierItems:
    """Fingerprints of the distinct items trimmed from the kept history, in generations (sorted
    uint32 arrays, oldest first; the last fills up). Immutable: `added` returns a new set, so a
    task's snapshot of it stays what it was at that event."""

    generations: tuple[np.ndarray, ...] = ()
    bits: int = FINGERPRINT_BITS

    @classmethod
    def of(cls, ids: Sequence[str], remember: int | None = None) -> EarlierItems:
        """ids oldest first, the last `remember` (default: all) distinct ones kept."""
        return cls().added(ids, len(ids) if remember is None else remember)

    def __len__(self) -> int:
        return sum(len(g) for g in self.generations)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EarlierItems):
            return NotImplemented
        return self.bits == other.bits and len(self.generations) == len(other.generations) and all(
            np.array_equal(a, b) for a, b in zip(self.generations, other.generations, strict=True))

    def __contains__(self, item_id: object) -> bool:
        return (isinstance(item_id, str) and bool(self.generations)
                and item_hash(item_id) & self._mask in self._lookup)

    def holds(self, hashes: np.ndarray) -> np.ndarray:
        """Per 64-bit hash (from `fingerprints`): whether its fingerprint is held (vectorised)."""
        return np.isin(np.asarray(hashes, np.uint64) & np.uint64(self._mask), self._sorted)

    @property
    def _mask(self) -> int:
        return (1 << self.bits) - 1

    @cached_property
    def _sorted(self) -> np.ndarray:
        return np.unique(np.concatenate([*self.generations, np.zeros(0, np.uint32)]))

    @cached_property
    def _lookup(self) -> frozenset[int]:
        return frozenset(self._sorted.tolist())

    def added(self, dropped: Sequence[str], remember: int) -> EarlierItems:
        """`dropped` (oldest first) joined as the most recent, each moved out of any older
        generation (distinct, latest sighting); then bounded to `remember`."""
        if remember <= 0:
            return EarlierItems(bits=self.bits)
        size = -(-remember // GENERATIONS)
        gens = list(self.generations)
        fps = [item_hash(i) & self._mask for i in dropped]
        for fp in list(dict.fromkeys(reversed(fps)))[::-1]:  # distinct, each at its last position
            gens = [g[g != fp] for g in gens]
            if not gens or len(gens[-1]) >= size:
                gens.append(np.zeros(0, np.uint32))
            gens[-1] = np.insert(gens[-1], np.searchsorted(gens[-1], fp), np.uint32(fp))
        return EarlierItems(_bounded([g for g in gens if len(g)], remember), self.bits)

    def write(self, w: Writer) -> None:
        """bits (u8), fingerprints per generation (u32 array), one Elias-Fano blob (u8 array)."""
        w.pack("B", self.bits)
        w.array(np.array([len(g) for g in self.generations], np.uint32), "<u4")
        blob = b"".join(_ef_encode(g, self.bits) for g in self.generations)
        w.array(np.frombuffer(blob, np.uint8), "u1")

    @classmethod
    def read(cls, r: Reader) -> EarlierItems:
        """What `write` wrote; StateCodecError when counts, blob and values disagree."""
        (bits,) = r.unpack("B")
        counts, blob = r.array("<u4", 1).tolist(), r.array("u1", 1).tobytes()
        if not 1 <= bits <= 32 or 0 in counts:
            raise StateCodecError(f"earlier items: bad fingerprint width {bits} or empty generation")
        gens, pos = [], 0
        for n in counts:
            values, pos = _ef_decode(blob, pos, n, bits)
            gens.append(values)
        if pos != len(blob):
            raise StateCodecError(f"earlier items: {len(blob) - pos} stray bytes")
        return cls(tuple(gens), bits)


def _bounded(gens: list[np.ndarray], remember: int) -> tuple[np.ndarray, ...]:
    """Drop from the oldest generations until at most `remember` fingerprints remain; a partly
    dropped generation loses its lowest ones (hash order: arbitrary, but deterministic)."""
    excess = sum(len(g) for g in gens) - remember
    while excess > 0:
        cut = min(excess, len(gens[0]))
        gens[0] = gens[0][cut:]
        excess -= cut
        if not len(gens[0]):
            gens.pop(0)
    return tuple(gens)


def _widths(n: int, bits: int) -> tuple[int, int, int]:
    """Elias-Fano layout of n values below 2^bits: low width, low bytes, upper bytes."""
    low = max(0, bits - (n - 1).bit_length())
    return low, (n * low + 7) // 8, (n + (1 << (bits - low)) + 7) // 8


def _ef_encode(values: np.ndarray, bits: int) -> bytes:
    """Sorted distinct values: `low` bits each verbatim, the rest as a unary-coded bit vector
    (a 1 at high + i), ~ log2(2^bits / n) + 2 bits a value."""
    n = len(values)
    low, _, _ = _widths(n, bits)
    v = values.astype(np.uint64)
    lows = (v[:, None] >> np.arange(low, dtype=np.uint64)) & np.uint64(1)
    upper = np.zeros(n + (1 << (bits - low)), np.uint8)
    upper[(v >> np.uint64(low)).astype(np.int64) + np.arange(n)] = 1
    return (np.packbits(lows.astype(np.uint8).ravel(), bitorder="little").tobytes()
            + np.packbits(upper, bitorder="little").tobytes())


def _ef_decode(blob: bytes, pos: int, n: int, bits: int) -> tuple[np.ndarray, int]:
    """One generation from blob[pos:]; returns its values and the position after it."""
    low, low_bytes, up_bytes = _widths(n, bits)
    end = pos + low_bytes + up_bytes
    if end > len(blob):
        raise StateCodecError("earlier items: truncated fingerprints")
    raw = np.frombuffer(blob, np.uint8, end - pos, pos)
    lows = np.unpackbits(raw[:low_bytes], bitorder="little")[: n * low].reshape(n, low)
    ones = np.flatnonzero(np.unpackbits(raw[low_bytes:], bitorder="little")[: n + (1 << (bits - low))])
    if len(ones) != n:
        raise StateCodecError("earlier items: fingerprint count and bits disagree")
    high = (ones - np.arange(n)).astype(np.uint64)
    values = (high << np.uint64(low)) | (lows.astype(np.uint64) << np.arange(low, dtype=np.uint64)).sum(
        1, dtype=np.uint64)
    if np.any(np.diff(values.astype(np.int64)) <= 0):
        raise StateCodecError("earlier items: fingerprints not sorted and distinct")
    return values.astype(np.uint32), end


@dataclass(frozen=True, eq=False)
class SeenItems:
    """A user's exclusion set at one event: `in` and `len` (what retrieval, the fallback and the
    ID term need); exact for the kept history, by fingerprint for earlier items."""

    kept: frozenset[str]
    earlier: EarlierItems

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.kept or item_id in self.earlier

    def __bool__(self) -> bool:
        return bool(self.kept) or bool(len(self.earlier))

    def __len__(self) -> int:
        return self._size

    @cached_property
    def _size(self) -> int:
        # distinct items, as the set of ids held before: an earlier item seen again is kept too
        if not len(self.earlier):
            return len(self.kept)
        again = int(self.earlier.holds(fingerprints(self.kept)).sum())
        return len(self.kept) + len(self.earlier) - again
