"""What the trainer keeps per user: recent engaged items (the tower's input) and recent skipped
impressions (hard negatives), in a KVStore (the trainer's: on disk beside the ID rows, and in
its checkpoints), or in a checksummed file (the snapshots of format 1).

Users expire by the workers' rule (streams/engine/engine.py): an event more than the TTL of event
time after a user's last one starts from an empty history, so the tower reads in the trainer what
it reads on a worker; and a sweep (expire) drops the users idle past the TTL behind the stream's
newest event time, so the store holds the active users only. The sweep walks users oldest first
(the order of their last events as recorded), stopping at the first one still active."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
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
    last_seen: float = 0.0  # event time of the user's last event (0: none yet)


class Histories:
    """user_id -> History in a KVStore (JSON values: ids only, nothing executable)."""

    def __init__(self, kv: KVStore, max_items: int, max_impressions: int) -> None:
        self.kv, self.max_items, self.max_impressions = kv, max_items, max_impressions
        self._seen: OrderedDict[str, float] = OrderedDict()  # user -> last_seen, oldest first

    def __len__(self) -> int:
        return len(self._seen)

    def get(self, user_id: str) -> History:
        raw = self.kv.get(_PREFIX + user_id.encode("utf-8"))
        if raw is None:
            return History()
        d = json.loads(raw)
        return History(list(d["i"]), list(d["x"]), float(d.get("t", 0.0)))

    def put(self, user_id: str, h: History) -> None:
        h.items = h.items[-self.max_items:]
        h.impressions = h.impressions[-self.max_impressions:] if self.max_impressions else []
        value = json.dumps({"i": h.items, "x": h.impressions, "t": h.last_seen}, separators=(",", ":"))
        self.kv.put(_PREFIX + user_id.encode("utf-8"), value.encode())
        self._seen[user_id] = h.last_seen
        self._seen.move_to_end(user_id)

    def expire(self, cutoff_ts: float) -> int:
        """Drop the users whose last event is before cutoff_ts (oldest first, up to the first
        later one); returns how many."""
        gone = []
        while self._seen:
            user, ts = next(iter(self._seen.items()))
            if ts >= cutoff_ts:
                break
            self._seen.popitem(last=False)
            gone.append(_PREFIX + user.encode("utf-8"))
        if gone:
            self.kv.write_batch([], gone)
        return len(gone)

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
        return self.reload()

    def reload(self) -> int:
        """Index the histories the KV holds (opened from a checkpoint): the sweep's order by
        last event; returns how many."""
        seen = []
        for key, value in self.entries():
            # no "t" (a snapshot from before expiry): kept until the user's next event dates it
            seen.append((float(json.loads(value).get("t", 0.0)) or float("inf"), key[len(_PREFIX):].decode("utf-8")))
        self._seen = OrderedDict((u, t) for t, u in sorted(seen))
        return len(seen)
