"""The per-partition offset decision (no broker): process, skip a redelivery, repair a gap."""

from __future__ import annotations

from streams.worker.offsets import Decision, PartitionCursor, Verdict, decide


def test_next_offset_is_processed():
    assert decide(5, 5) == Decision(Verdict.PROCESS)


def test_unknown_partition_trusts_the_event():
    assert decide(None, 17) == Decision(Verdict.PROCESS)


def test_offsets_below_expected_are_duplicates():
    assert decide(5, 4).verdict is Verdict.DUPLICATE
    assert decide(5, 0).verdict is Verdict.DUPLICATE


def test_gap_names_exactly_the_missing_range():
    d = decide(3, 9)
    assert d.verdict is Verdict.REPAIR
    assert list(d.missing) == [3, 4, 5, 6, 7, 8]


def test_cursor_walks_a_batch_with_a_gap_and_a_redelivery():
    cur = PartitionCursor.starting_at({0: 10, 1: None})
    seen = []
    for p, off in [(0, 9), (0, 10), (1, 4), (0, 13), (0, 13), (1, 5)]:
        d = cur.check(p, off)
        seen.append((p, off, d.verdict, list(d.missing)))
        if d.verdict is not Verdict.DUPLICATE:
            cur.accept(p, off)
    assert seen == [
        (0, 9, Verdict.DUPLICATE, []),
        (0, 10, Verdict.PROCESS, []),
        (1, 4, Verdict.PROCESS, []),
        (0, 13, Verdict.REPAIR, [11, 12]),
        (0, 13, Verdict.DUPLICATE, []),
        (1, 5, Verdict.PROCESS, []),
    ]
    assert cur.expected == {0: 14, 1: 6}
    assert cur.moved == {0, 1}


def test_accept_never_moves_backwards_and_untouched_partitions_stay_unmoved():
    cur = PartitionCursor.starting_at({0: 8, 1: 3})
    cur.accept(0, 2)
    assert cur.expected == {0: 8, 1: 3}
    assert cur.moved == set()
