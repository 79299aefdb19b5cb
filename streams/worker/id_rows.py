"""The worker's ID rows on local disk, so a restart reads the tail of `parameters`, not all of it.

Without them every start loads the checkpoint's rows and replays the whole compacted topic record
by record (every row the trainer ever published). Here the rows live in a rocksdict under the
worker's data dir, and `applied.json` beside them names the checkpoint they grew from, the next
`parameters` offset per partition and the sync version they reflect. At most every `every_s`
seconds the rows are flushed, then the file replaced, so after a crash the file is never ahead
of the rows: a restart re-applies from its offsets (the last seconds of syncs at most), and
re-applied records are harmless (an equal version is applied again, an older one ignored). A
directory written for another checkpoint, or without the file, starts from the checkpoint's rows
at offset 0.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from durable import write_atomic
from model.ids.id_checkpoint import load_id_half
from store import IdMemory, IdMemoryConfig, IdRow
from store.rocksdict_backend import RocksDictKV
from streams.engine.id_half import IdHalf

logger = logging.getLogger(__name__)

STATE = "applied.json"


def replica_config(dim: int) -> IdMemoryConfig:
    """The ID memory of a worker's rows: no TTL (the trainer expires rows and publishes the
    tombstones), every row's version held, so applying a sync reads no stored row; it publishes
    nothing, so it keeps no set of the rows it changed."""
    return IdMemoryConfig(dim=dim, ttl_s=0, versions_held=True, track_touched=False)


def checkpoint_tag(checkpoint: Path) -> str:
    """The checkpoint's identity: its path and its files' sizes and modification times (a
    checkpoint retrained in place is another one)."""
    files = sorted(p for p in Path(checkpoint).iterdir() if p.is_file())
    return json.dumps([str(Path(checkpoint).resolve()), [(p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                                         for p in files]])


@dataclass
class LocalIdRows:
    """ID rows in `root/rows` and what they reflect in `root/applied.json`."""

    root: Path
    checkpoint_tag: str  # the checkpoint's identity (its version): rows of another one are dropped
    offsets: dict[int, int] | None = None  # next parameters offset per partition, as saved
    every_s: float = 5.0  # most seconds between saves (each flushes the rows to disk)
    _saved_at: float = 0.0
    _applied: dict[int, int] | None = None  # offsets applied, saved or not

    def open(self, checkpoint: Path) -> IdHalf | None:
        """The ID half over the local rows when they grew from this checkpoint (offsets as saved),
        else over the checkpoint's rows written afresh (offsets {}); None for a content-only one."""
        ck = load_id_half(checkpoint)
        if ck is None:
            return None
        state = self._state()
        if state is None:
            shutil.rmtree(self.root / "rows", ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        # point reads: a sync reads the stored version of each row it applies that is not cached
        kv = RocksDictKV(self.root / "rows", point_reads=True)
        memory = IdMemory(kv, replica_config(ck.tower.opts.dim))
        if state is None:
            ids, rows, slots = ck.present_rows()
            memory.put_rows(ids, [IdRow(r, s) for r, s in zip(rows, slots, strict=True)])
            memory.flush()
            self.offsets = {}
            self._write(memory)  # the rows are the checkpoint's: a crash now need not reload them
            logger.info("ID rows: %d from the checkpoint into %s", len(ids), self.root)
        else:
            memory.version, self.offsets = int(state["version"]), {int(p): int(o) for p, o in state["offsets"].items()}
            logger.info("ID rows: %d local rows at version %d, parameters from %s", len(memory),
                        memory.version, self.offsets)
        return IdHalf(memory, ck.tower, ck.fusion)

    def applied(self, memory: IdMemory, partition: int, next_offset: int, force: bool = False) -> None:
        """Rows applied up to next_offset of a partition; saved (rows flushed, then the file)
        when every_s has passed since the last save, or when forced."""
        self._applied = {**(self._applied or self.offsets or {}), partition: next_offset}
        if force or time.monotonic() - self._saved_at >= self.every_s:
            memory.flush()
            self.offsets = dict(self._applied)
            self._write(memory)
            self._saved_at = time.monotonic()

    def _write(self, memory: IdMemory) -> None:
        doc = {"checkpoint": self.checkpoint_tag, "version": memory.version,
               "offsets": {str(p): o for p, o in (self.offsets or {}).items()}}
        write_atomic(self.root / STATE, json.dumps(doc), sync=False)

    def _state(self) -> dict | None:
        """The saved state when it belongs to this checkpoint and its rows exist."""
        try:
            doc = json.loads((self.root / STATE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if doc.get("checkpoint") != self.checkpoint_tag or not (self.root / "rows").exists():
            logger.info("ID rows in %s are of another checkpoint: starting from this one", self.root)
            return None
        return doc
