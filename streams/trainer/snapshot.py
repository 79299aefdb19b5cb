"""The trainer's durable state: rows (with Adagrad slots and the admission filter), histories,
the offsets they reflect and the counters, as one snapshot directory named by CURRENT.

A snapshot is written whole into a fresh directory, then CURRENT is replaced atomically, so a
kill -9 at any moment leaves the previous snapshot or the new one, never a mix.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from durable import replace_dir, write_atomic
from store import IdMemory, IdMemoryConfig, KVStore
from streams.trainer.histories import Histories

logger = logging.getLogger(__name__)

KEEP = 2  # snapshot directories kept (the current one and the one before)


@dataclass
class SnapshotMeta:
    """What a snapshot reflects: next offset per partition (a block boundary: blocks are learned
    whole), sync version, counters."""

    offsets: dict[int, int] = field(default_factory=dict)
    version: int = 0
    stats: dict = field(default_factory=dict)
    sync_event_ts: float = 0.0  # event time of the last sync (event-clock syncs)
    # open negative blocks of snapshots from before blocks were learned whole; read, not used
    negatives: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = {**self.__dict__, "offsets": {str(p): o for p, o in self.offsets.items()}}
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> SnapshotMeta:
        d = json.loads(text)
        d["offsets"] = {int(p): int(o) for p, o in d["offsets"].items()}
        return cls(**d)


def write(root: Path, memory: IdMemory, histories: Histories, meta: SnapshotMeta) -> Path:
    """A new snapshot under root; CURRENT names it once it is complete."""
    root.mkdir(parents=True, exist_ok=True)
    seq = 1 + max((int(p.name.split("-")[1]) for p in root.glob("snap-*")), default=0)
    target = root / f"snap-{seq:08d}"
    tmp = root / f".{target.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    memory.snapshot(tmp / "rows.snap")
    users = histories.snapshot(tmp / "histories.jsonl")
    (tmp / "meta.json").write_text(meta.to_json())
    replace_dir(tmp, target)
    write_atomic(root / "CURRENT", target.name)
    for old in sorted(root.glob("snap-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("trainer snapshot %s: %d rows, %d users, offsets %s", target.name, len(memory),
                users, meta.offsets)
    return target


def current(root: Path) -> Path | None:
    """The directory CURRENT names, or None on an empty disk."""
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None
    return root / pointer.read_text().strip()


def restore(snap: Path, rows: KVStore, users: Histories, config: IdMemoryConfig) -> tuple[IdMemory, SnapshotMeta]:
    """Rows and histories written back into their stores; the meta they reflect."""
    memory = IdMemory.restore(snap / "rows.snap", rows, config)
    users.restore(snap / "histories.jsonl")
    return memory, SnapshotMeta.from_json((snap / "meta.json").read_text())

