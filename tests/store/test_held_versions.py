"""HeldVersions: a dict of versions kept as slots of an array, against a plain dict."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from store.held_versions import HeldVersions

IDS = st.sampled_from([f"i{k}" for k in range(40)])
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), IDS, st.integers(0, 2**64 - 1)),
    st.tuples(st.just("pop"), IDS, st.just(0)),
    st.tuples(st.just("put"), st.lists(IDS, unique=True, max_size=12), st.integers(0, 2**64 - 1)),
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_held_versions_behave_as_a_dict_of_versions(ops) -> None:
    """Sets, removals (their slots reused) and batch puts through slots read just before leave
    what a dict would hold; reads of slots give each id's version, 0 and absent where none."""
    held, want = HeldVersions(), {}
    for op, ids, version in ops:
        if op == "set":
            held[ids], want[ids] = version, version
        elif op == "pop":
            held.pop(ids)
            want.pop(ids, None)
        else:
            versions = (np.arange(len(ids), dtype=np.uint64) + np.uint64(version % 2**60))
            held.put(ids, held.slots(ids), versions)
            want.update(zip(ids, versions.tolist(), strict=True))
    assert dict(held.items()) == want and len(held) == len(want)
    probe = [f"i{k}" for k in range(40)]
    stored, absent = held.read(held.slots(probe))
    assert absent.tolist() == [i not in want for i in probe]
    assert stored.tolist() == [want.get(i, 0) for i in probe]
    assert all((held.get(i) == want.get(i)) and ((i in held) == (i in want)) for i in probe)


def test_slots_are_reused_and_the_array_grows_past_its_first_size() -> None:
    held = HeldVersions((f"i{k}", k) for k in range(3000))
    slot = held.slots(["i7"])[0]
    held.pop("i7")
    held["new"] = 5
    assert held.slots(["new"])[0] == slot and held.get("new") == 5 and held.get("i2999") == 2999
