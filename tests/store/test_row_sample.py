"""RowSample: a seeded bottom-n sample that follows inserts and removals like a fresh draw."""

from __future__ import annotations

import numpy as np

from store.row_sample import RowSample, priority


def bottom(keys: list[str], n: int, seed: int) -> list[str]:
    return sorted(sorted(keys, key=lambda k: priority(seed, k))[:n])


def _put(sample: RowSample, keys: list[str]) -> None:
    sample.put(keys, np.ones((len(keys), 2), np.float32))


def test_puts_and_removals_keep_the_n_smallest_priorities():
    sample, rows = RowSample(50, 2, seed=7), [f"k{j}" for j in range(30)]
    _put(sample, rows)
    assert sample.complete and sample.matrix()[0] == sorted(rows)  # fewer rows than n: all of them
    rows += [f"k{j}" for j in range(30, 400)]
    _put(sample, rows[30:])
    assert not sample.complete and sample.matrix()[0] == bottom(rows, 50, 7)
    _put(sample, rows[:100])  # changed rows: members take the new vector, nobody else enters
    assert sample.matrix()[0] == bottom(rows, 50, 7)
    members = sample.matrix()[0]
    sample.drop(members[:10] + ["k399", "unknown"])
    rows = [r for r in rows if r not in set(members[:10]) | {"k399"}]
    # smaller, still a threshold sample: every row at or under the threshold, no other
    assert sample.matrix()[0] == sorted(r for r in rows if priority(7, r) <= sample.threshold)
    assert not sample.needs_rebuild(len(rows))  # 40 >= 0.75 x 50
    sample.drop(sample.matrix()[0][:5])
    assert sample.needs_rebuild(len(rows))
    rows = rows[5:]
    chosen = sample.rebuild(rows)
    assert sorted(chosen) == bottom(rows, 50, 7)


def test_the_seed_decides_the_sample_and_few_rows_make_it_exact():
    rows = [f"k{j}" for j in range(1000)]
    a, b, c = RowSample(100, 2, seed=1), RowSample(100, 2, seed=1), RowSample(100, 2, seed=2)
    for s in (a, b, c):
        _put(s, rows)
    assert a.matrix()[0] == b.matrix()[0] != c.matrix()[0]
    assert len(set(a.matrix()[0]) & set(c.matrix()[0])) < 40  # independent draws overlap ~10
    a.drop(a.matrix()[0])
    assert a.needs_rebuild(900)
    assert sorted(a.rebuild(rows[:80])) == sorted(rows[:80]) and a.complete  # <= n rows: every one


def test_known_rows_skip_the_hash_and_the_matrix_follows_changed_members_in_place():
    """Rows put again with known=True (put before, never dropped) end as they would with
    known=False: members take the new vectors (the cached matrix too), nobody else enters; new
    rows among them are still judged by priority."""
    rows = [f"k{j}" for j in range(400)]
    a, b = RowSample(50, 3, seed=7), RowSample(50, 3, seed=7)
    for s in (a, b):
        s.put(rows, np.zeros((400, 3), np.float32))
    a.matrix()  # cached: the put below changes members and admits new ones
    new = np.arange(1200, dtype=np.float32).reshape(400, 3)
    extra = [f"n{j}" for j in range(100)]
    a.put(rows + extra, np.concatenate([new, np.full((100, 3), -1, np.float32)]), [True] * 400 + [False] * 100)
    b.put(rows + extra, np.concatenate([new, np.full((100, 3), -1, np.float32)]))
    assert a.matrix()[0] == b.matrix()[0] == bottom(rows + extra, 50, 7)
    np.testing.assert_array_equal(a.matrix()[1], b.matrix()[1])
    c = RowSample(50, 3, seed=7)
    c.put(rows, new)
    members = c.matrix()[0]
    c.put(rows[:200], new[:200] + 1, [True] * 200)  # members' vectors only: the same matrix, updated
    assert c.matrix()[1] is c.matrix()[1] and c.matrix()[0] == members
    at = {k: j for j, k in enumerate(rows)}
    np.testing.assert_array_equal(c.matrix()[1], [new[at[k]] + (at[k] < 200) for k in members])


def test_a_key_repeated_in_one_put_keeps_its_last_vector():
    """Members and new keys alike: the last of a key's vectors in one put is the one kept (as
    puts one by one would leave it), and a new key repeated joins once."""
    sample = RowSample(10, 1, seed=3)
    sample.put(["a", "b"], np.array([[1.0], [2.0]], np.float32))
    sample.matrix()
    sample.put(["a", "c", "a", "c"], np.array([[3.0], [4.0], [5.0], [6.0]], np.float32), [True, False, True, False])
    keys, vectors = sample.matrix()
    assert keys == ["a", "b", "c"]
    np.testing.assert_array_equal(vectors[:, 0], [5.0, 2.0, 6.0])
    assert sorted(k for _, k in sample._heap) == ["a", "b", "c"]


def test_a_put_planned_ahead_equals_a_put_and_a_plan_the_sample_outdated_is_not_used():
    """plan_put's reads, done before the put (off the worker's lock), give the put's result; once
    a change came between (here: new rows pushed out a member the plan had found), the put works
    afresh, so that member does not come back."""
    rows = [f"k{j}" for j in range(400)]
    a, b = RowSample(50, 3, seed=7), RowSample(50, 3, seed=7)
    for s in (a, b):
        s.put(rows, np.zeros((400, 3), np.float32))
    keys, known = rows[:200] + [f"n{j}" for j in range(100)], [True] * 200 + [False] * 100
    vectors = np.arange(900, dtype=np.float32).reshape(300, 3)
    a.put(keys, vectors, known, plan=a.plan_put(keys, known))
    b.put(keys, vectors, known)
    assert a.matrix()[0] == b.matrix()[0] == bottom(rows + keys[200:], 50, 7)
    np.testing.assert_array_equal(a.matrix()[1], b.matrix()[1])
    last = max(a.matrix()[0], key=lambda k: priority(7, k))  # the member with the largest priority
    plan = a.plan_put([last], [True])
    lower = [k for k in (f"x{j}" for j in range(5000)) if priority(7, k) < a.threshold][:3]
    a.put(lower, np.ones((3, 3), np.float32))  # pushes `last` out
    assert last not in a
    a.put([last], np.ones((1, 3), np.float32), [True], plan=plan)
    assert last not in a and len(a) == 50 and sorted(k for _, k in a._heap) == a.matrix()[0]
