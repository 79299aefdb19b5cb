"""What the trainer keeps per user: recent engaged items (the tower's input) and recent skipped
impressions (hard negatives), in a KVStore, with a checksummed snapshot file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from durable import atomic_writer
from store import KVStore, StateCodecError

_PREFIX = b"hist/"


@dataclass
class History:
    """One user's recent engaged item ids and skipped impressions, oldest first."""

    items: list[str] = field(default_factory=list)
    impressions: list[str] = field(default_factory=list)


class Histories:
    """user_id -> History in a KVStore (JSON values: ids only, nothing executable)."""

    def __init__(self, kv: KVStore, max_items: int, max_impressions: int) -> None:
        self.kv, self.max_items, self.max_impressions = kv, max_items, max_impressions

    def get(self, user_id: str) -> History:
        raw = self.kv.get(_PREFIX + user_id.encode("utf-8"))
        if raw is None:
            return History()
        d = json.loads(raw)
        return History(list(d["i"]), list(d["x"]))

    def put(self, user_id: str, h: History) -> None:
        h.items = h.items[-self.max_items:]
        h.impressions = h.impressions[-self.max_impressions:] if self.max_impressions else []
        value = json.dumps({"i": h.items, "x": h.impressions}, separators=(",", ":"))
        self.kv.put(_PREFIX + user_id.encode("utf-8"), value.encode())

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        return self.kv.iterate(_PREFIX)

    def snapshot(self, path: Path) -> int:
        """Every entry to one file (JSON lines, then a sha256 line), written atomically."""
        digest, n = hashlib.sha256(), 0
        with atomic_writer(path) as f:
            for key, value in self.entries():
                line = json.dumps([key[len(_PREFIX):].decode("utf-8"), value.decode()]).encode() + b"\n"
                digest.update(line)
                f.write(line)
                n += 1
            f.write(json.dumps({"sha256": digest.hexdigest(), "users": n}).encode() + b"\n")
        return n

    def restore(self, path: Path) -> int:
        """Replace every entry with a snapshot's; StateCodecError when the checksum fails."""
        lines = path.read_bytes().splitlines(keepends=True)
        if not lines:
            raise StateCodecError(f"{path}: empty history snapshot")
        body, trailer = lines[:-1], json.loads(lines[-1])
        digest = hashlib.sha256(b"".join(body)).hexdigest()
        if digest != trailer.get("sha256") or len(body) != trailer.get("users"):
            raise StateCodecError(f"{path}: history snapshot checksum or count mismatch")
        self.kv.write_batch([], [k for k, _ in self.entries()])
        puts = []
        for line in body:
            user, value = json.loads(line)
            puts.append((_PREFIX + user.encode("utf-8"), value.encode()))
        self.kv.write_batch(puts)
        return len(puts)
