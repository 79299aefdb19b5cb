"""HeldVersions: every row's version by slot, written for a batch in one assignment."""

from __future__ import annotations

import random

import numpy as np

from store.held_versions import HeldVersions


def test_slots_read_ahead_write_a_batch_as_one_set_per_row_would():
    """Random creates, batch writes through slots read before them, and removals (their slots
    reused) leave what a plain dict of the same changes holds; the array grows past its start."""
    rnd = random.Random(4)
    held, ref = HeldVersions({"a": 3, "b": 0}), {"a": 3, "b": 0}
    for step in range(300):
        ids = list(dict.fromkeys(f"r{rnd.randrange(3000)}" for _ in range(rnd.randrange(1, 40))))
        if step % 7 == 3:
            for i in ids[:5]:
                held.pop(i)
                ref.pop(i, None)
            continue
        slots = held.slots(ids)
        assert np.array_equal(slots < 0, [i not in ref for i in ids])
        assert held.at(slots).tolist() == [ref.get(i, 0) for i in ids]
        versions = np.array([rnd.randrange(2**64) for _ in ids], np.uint64)
        held.write(ids, slots, versions)
        ref.update(zip(ids, versions.tolist(), strict=True))
    assert dict(held.items()) == ref and len(held) == len(ref) and "a" in held and "zz" not in held
    held.set("zz", 2**64 - 1)
    assert held.at(held.slots(["zz", "nope"])).tolist() == [2**64 - 1, 0]
