"""Leave-one-out with impression events and few-candidate negative sampling."""

from __future__ import annotations

from streams.data.records import Engagement, Item
from streams.data.split import (
    ImpressionNegativeSampler,
    leave_one_out,
    order_by_time,
    sampled_impression,
)


def E(u, i, ts, kind="click"):
    return Engagement(u, i, float(ts), kind)


def test_order_by_time_is_stable():
    evs = [E("a", "1", 5), E("b", "2", 1), E("a", "3", 5), E("c", "4", 1)]
    assert [e.item_id for e in order_by_time(evs)] == ["2", "4", "1", "3"]


def test_impression_events_never_held_out_and_stay_in_their_window():
    evs = order_by_time([E("u", "1", 1), E("u", "x", 2, "impression"), E("u", "2", 3),
                         E("u", "y", 4, "impression"), E("u", "3", 5), E("u", "z", 6, "impression")])
    split = leave_one_out(evs)
    assert [e.item_id for e in split.train] == ["1", "x"]
    assert [e.item_id for e in split.valid] == ["2", "y"]
    assert [e.item_id for e in split.test] == ["3", "z"]


def test_users_with_one_or_two_positives():
    split = leave_one_out(order_by_time([E("one", "1", 1), E("two", "1", 1), E("two", "2", 2),
                                         E("none", "9", 1, "impression")]))
    assert [(e.user_id, e.item_id) for e in split.test] == [("one", "1"), ("two", "2")]
    assert [(e.user_id, e.item_id) for e in split.valid] == [("two", "1")]
    assert [(e.user_id, e.item_id) for e in split.train] == [("none", "9")]


def test_sampler_excludes_seen_and_ties_and_unpublished():
    items = [Item(str(i), f"t{i}", ts=0.0) for i in range(1, 7)] + [Item("late", "t", ts=99.0)]
    evs = order_by_time([E("u", "1", 1), E("u", "2", 2), E("u", "3", 2), E("u", "4", 50)])
    sampler = ImpressionNegativeSampler(items, evs, seed=0)
    imp = sampled_impression(sampler, evs[1], "valid")  # item 2 at ts 2; item 3 ties it
    negs = {c for c, lab in zip(imp.candidates, imp.labels, strict=True) if not lab}
    assert negs == {"4", "5", "6"}  # only unseen published ones, fewer than 4 available
    assert imp.labels.count(1) == 1 and imp.candidates[imp.labels.index(1)] == "2"


def test_sampler_large_catalog_deterministic():
    items = [Item(str(i), "t", ts=0.0) for i in range(1000)]
    evs = [E("u", str(i), i) for i in range(10)]
    a = sampled_impression(ImpressionNegativeSampler(items, evs, seed=7), evs[-1], "test")
    b = sampled_impression(ImpressionNegativeSampler(items, evs, seed=7), evs[-1], "test")
    assert a == b and len(a.candidates) == 5
    assert not {c for c, lab in zip(a.candidates, a.labels, strict=True) if not lab} & {str(i) for i in range(10)}
