"""RocksDB KVStore backend through rocksdict (raw bytes mode, as Faust's rocksdb store uses)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from rocksdict import (
    BlockBasedOptions,
    Cache,
    Checkpoint,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from .config import RocksMemory
from .errors import StoreClosedError

logger = logging.getLogger(__name__)


def options(memory: RocksMemory, point_reads: bool = False) -> Options:
    """rocksdict Options within a memory budget. point_reads: for values read mostly by random
    point lookups that do not compress (ID rows: float32 vectors): blocks stored uncompressed
    and files read through mmap, so a lookup neither copies nor decompresses its block (about
    half the CPU of a multi-get over a table larger than the block cache, measured here)."""
    # raw_mode: store bytes as-is, with no rocksdict type prefix, so other readers can share it
    opts = Options(raw_mode=True)
    if point_reads:
        opts.set_compression_type(DBCompressionType.none())
        opts.set_allow_mmap_reads(True)
    opts.set_write_buffer_size(memory.memtable_bytes)
    opts.set_max_write_buffer_number(memory.memtables)
    table = BlockBasedOptions()
    table.set_block_cache(Cache(memory.block_cache_bytes))
    opts.set_block_based_table_factory(table)
    return opts


class RocksDictKV:
    """A RocksDB database at `path`; created if missing, reopened with its data otherwise
    (point_reads: see options())."""

    def __init__(self, path: str | Path, memory: RocksMemory | None = None, point_reads: bool = False) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._db: Rdict | None = Rdict(str(path), options(memory or RocksMemory(), point_reads))

    @classmethod
    def from_checkpoint(cls, source: str | Path, path: str | Path, memory: RocksMemory | None = None,
                        point_reads: bool = False) -> RocksDictKV:
        """The database at path replaced by the checkpoint at source, opened. Table files are
        hard-linked (RocksDB never rewrites one), the rest copied: the manifest and the log are
        appended to, and the checkpoint must stay as it was."""
        source, path = Path(source), Path(path)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        for f in source.iterdir():
            if f.suffix == ".sst":
                os.link(f, path / f.name)
            else:
                shutil.copy2(f, path / f.name)
        return cls(path, memory, point_reads)

    def checkpoint(self, path: str | Path) -> None:
        """A consistent copy of the database in the new directory path. Its table files are hard
        links, so a checkpoint costs the memtable flush and the files written since the last one."""
        Checkpoint(self._live()).create_checkpoint(str(path))

    def _live(self) -> Rdict:
        if self._db is None:
            raise StoreClosedError(f"rocksdict store at {self.path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return self._live().get(list(keys)) if keys else []  # one multi-get

    def put(self, key: bytes, value: bytes) -> None:
        self._live()[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        del self._live()[key]

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), logged: bool = True
    ) -> None:
        batch = WriteBatch(raw_mode=True)
        for key in deletes:
            batch.delete(key)
        for key, value in puts:
            batch.put(key, bytes(value))
        if logged:
            self._live().write(batch)
            return
        unlogged = WriteOptions()
        unlogged.disable_wal = True  # in the memtable only until flush() writes it out
        self._live().write(batch, unlogged)

    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._live().items(from_key=prefix):
            if not key.startswith(prefix):
                return
            yield key, value

    def flush(self) -> None:
        self._live().flush()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
