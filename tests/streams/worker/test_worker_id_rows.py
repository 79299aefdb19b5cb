"""The worker's ID rows on local disk: a restart loads the rows it had applied and resumes
`parameters` at its offsets, ending with the rows a replay of the whole topic gives; rows of
another checkpoint are dropped."""

from __future__ import annotations

import numpy as np

from model.training.tiny import write_id_half
from store import IdRow, encode_row, row_key
from streams.engine.parameters import apply_parameters
from streams.worker.id_rows import LocalIdRows, checkpoint_tag

ITEMS = [f"i{k}" for k in range(30)]


def _syncs(n: int, seed: int = 0) -> list[tuple[bytes, bytes | None]]:
    """n syncs of 8 rows each (vectors only, version = sync), a tombstone in every third."""
    rng, out = np.random.default_rng(seed), []
    for version in range(1, n + 1):
        for item in rng.choice(ITEMS, 8, replace=False).tolist():
            row = IdRow(rng.normal(size=8).astype(np.float32), np.zeros(8, np.float32), version=version)
            out.append((row_key("item", item), encode_row("item", item, row, served=True)))
        if version % 3 == 0:
            out.append((row_key("item", ITEMS[version % len(ITEMS)]), None))
    return out


def _rows(half) -> dict[str, IdRow]:
    return {i: half.memory.get_row(i) for i in half.memory.ids()}


def test_a_restart_loads_the_applied_rows_and_resumes_where_they_end(tmp_path):
    ckpt = write_id_half(tmp_path / "ckpt", ITEMS, dim=8, max_len=10)
    records = _syncs(40)
    local = LocalIdRows(tmp_path / "id-rows", checkpoint_tag(ckpt))
    half = local.open(ckpt)
    assert local.offsets == {} and sorted(half.memory.ids()) == sorted(ITEMS)
    head = len(records) * 3 // 4
    for start in range(0, head, 50):  # chunks as the replica applies them, saved as it goes
        apply_parameters(half, records[start:min(start + 50, head)])
        local.applied(half.memory, 0, min(start + 50, head), force=start + 50 >= head)
    half.memory.close()

    again = LocalIdRows(tmp_path / "id-rows", checkpoint_tag(ckpt))
    restarted = again.open(ckpt)
    assert again.offsets == {0: head} and restarted.memory.version == half.memory.version
    apply_parameters(restarted, records[head:])  # the tail only
    replayed = LocalIdRows(tmp_path / "empty-disk", checkpoint_tag(ckpt)).open(ckpt)
    apply_parameters(replayed, records)  # an empty disk: the whole topic from offset 0
    assert _rows(restarted) == _rows(replayed) and restarted.memory.version == replayed.memory.version == 40


def test_rows_of_another_checkpoint_or_without_a_saved_state_start_from_the_checkpoint(tmp_path):
    ckpt = write_id_half(tmp_path / "ckpt", ITEMS, dim=8, max_len=10)
    local = LocalIdRows(tmp_path / "id-rows", checkpoint_tag(ckpt))
    half = local.open(ckpt)
    fresh = _rows(half)
    apply_parameters(half, _syncs(5))
    local.applied(half.memory, 0, 17, force=True)
    half.memory.close()
    other = write_id_half(tmp_path / "other", ITEMS, dim=8, max_len=10)
    moved = LocalIdRows(tmp_path / "id-rows", checkpoint_tag(other))
    again = moved.open(other)
    assert moved.offsets == {} and again.memory.version == 0
    assert _rows(again) == fresh
    again.memory.close()
    (tmp_path / "id-rows" / "applied.json").unlink()  # rows without their state: not trusted
    third = LocalIdRows(tmp_path / "id-rows", checkpoint_tag(other))
    assert third.open(other).memory.version == 0 and third.offsets == {}
