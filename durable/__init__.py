"""Files and folders replaced so that a crash leaves the old version or the new one, never
half of one: written under a temporary name, fsynced, renamed over, then the folder fsynced
(the rename is only durable once its directory entry is). The one implementation of that
rule for model/, store/ and streams/ (it imports none of them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_writer", "fsync_dir", "replace_dir", "write_atomic"]


@contextmanager
def atomic_writer(path: Path, mode: str = "wb", sync: bool = True, **open_kw) -> Iterator[IO]:
    """A file to write `path`'s new content into; it replaces `path` when the block ends without
    an exception (and is removed when it raises). sync=False skips the fsyncs: for files that
    are rewritten every second and only read by monitors."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes | str, sync: bool = True) -> None:
    """Replace `path` with `data` (str: UTF-8) all at once."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_writer(path, "wb", sync) as f:
        f.write(raw)


def replace_dir(tmp: Path, directory: Path) -> None:
    """Put the complete folder `tmp` in place of `directory` (which may not exist yet)."""
    for root, _, names in os.walk(tmp):  # the files' content first, then the renames
        for name in names:
            _fsync_path(Path(root) / name)
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    shutil.rmtree(old, ignore_errors=True)


def fsync_dir(folder: Path) -> None:
    """Make the renames inside `folder` durable (a no-op where folders cannot be opened)."""
    try:
        _fsync_path(folder)
    except OSError:  # pragma: no cover - platforms without directory fds
        pass


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
