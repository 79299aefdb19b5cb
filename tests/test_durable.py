"""durable/: a write that fails leaves the old file (and no temp file); a folder swap leaves
the old folder or the new one."""

from __future__ import annotations

import pytest

from durable import atomic_writer, replace_dir, write_atomic


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.json"
    write_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_writer(path, "w") as f:
        f.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
    write_atomic(path, b"new", sync=False)
    assert path.read_bytes() == b"new"


def test_a_folder_is_swapped_whole(tmp_path):
    target, tmp = tmp_path / "snap", tmp_path / "snap.partial"
    for folder, text in ((target, "old"), (tmp, "new")):
        folder.mkdir()
        (folder / "a").write_text(text)
    replace_dir(tmp, target)
    assert (target / "a").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]
