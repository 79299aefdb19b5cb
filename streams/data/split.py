"""Event-time ordering, the leave-one-out split and sampled evaluation impressions."""

from __future__ import annotations

import bisect
import dataclasses
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence

from streams.data.records import Engagement, Impression, Item

logger = logging.getLogger(__name__)

NEGATIVES = 4
SPLIT_DESCRIPTION = ("leave-one-out per user over (ts, source row) order: last = test, "
                     "second-to-last = valid, rest = train; impressions = positive + 4 negatives "
                     "sampled (seeded) from catalog items published by then that the user had not "
                     "engaged with at or before that time")


def order_by_time(engagements: Iterable[Engagement]) -> list[Engagement]:
    """Sorted by ts; Python's sort is stable, so ties keep source row order."""
    return sorted(engagements, key=lambda e: e.ts)


@dataclasses.dataclass
class Split:
    """Engagements of each split, each in global event-time order."""

    train: list[Engagement]
    valid: list[Engagement]
    test: list[Engagement]


def leave_one_out(ordered: Sequence[Engagement]) -> Split:
    """Per user: last positive = test, second-to-last positive = valid, earlier = train.

    `ordered` must already be in (ts, row) order. Impression-kind events never
    count as the held-out positive; they join the split whose time window holds
    them, so each user's splits are contiguous in time. A user with one positive
    has only a test event, with two only valid + test.
    """
    positives: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(ordered):
        if e.positive:
            positives[e.user_id].append(i)
    bounds = {u: (idx[-2] if len(idx) > 1 else idx[-1], idx[-1]) for u, idx in positives.items()}
    split = Split([], [], [])
    for i, e in enumerate(ordered):
        valid_at, test_at = bounds.get(e.user_id, (len(ordered), len(ordered)))
        if len(positives.get(e.user_id, ())) == 1:
            valid_at = test_at  # a single positive goes to test, nothing to valid
        if i >= test_at:
            split.test.append(e)
        elif i >= valid_at:
            split.valid.append(e)
        else:
            split.train.append(e)
    return split


class ImpressionNegativeSampler:
    """Negatives of evaluation impressions: items a user had not engaged with at or before a time,
    from the catalog then (training negatives: model.examples.NegativeSampler)."""

    def __init__(self, items: Iterable[Item], ordered: Sequence[Engagement], seed: int) -> None:
        catalog = sorted(items, key=lambda it: (it.ts, it.item_id))
        self._ids = [it.item_id for it in catalog]
        self._ts = [it.ts for it in catalog]
        self.seed = seed
        # Per user: (ts, item) of positive engagements, in time order.
        self._seen: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for e in ordered:
            if e.positive:
                self._seen[e.user_id].append((e.ts, e.item_id))

    def seen_until(self, user_id: str, ts: float) -> set[str]:
        """Items the user engaged with at ts or earlier (ties count as seen: safer negatives)."""
        return {item for t, item in self._seen.get(user_id, ()) if t <= ts}

    def sample(self, user_id: str, ts: float, tag: str, k: int = NEGATIVES) -> tuple[list[str], random.Random]:
        """Up to k negatives, deterministic in (seed, user, tag); only items published by ts."""
        rng = random.Random(f"{self.seed}:{tag}:{user_id}")
        seen = self.seen_until(user_id, ts)
        available = bisect.bisect_right(self._ts, ts)
        if available - len(seen) <= 2 * k or available <= 4 * len(seen):
            # Few unseen candidates: enumerate them (rejection sampling could spin).
            pool = [i for i in self._ids[:available] if i not in seen]
            return rng.sample(pool, min(k, len(pool))), rng
        # Here more than 2k unseen items exist and most draws hit one, so this ends fast.
        picked: list[str] = []
        while len(picked) < k:
            cand = self._ids[rng.randrange(available)]
            if cand not in seen and cand not in picked:
                picked.append(cand)
        return picked, rng


def sampled_impression(sampler: ImpressionNegativeSampler, positive: Engagement, tag: str) -> Impression:
    """The positive plus sampled negatives, shuffled so position leaks nothing."""
    negatives, rng = sampler.sample(positive.user_id, positive.ts, tag)
    cands = [(positive.item_id, 1)] + [(n, 0) for n in negatives]
    rng.shuffle(cands)
    return Impression(positive.user_id, positive.ts, [c for c, _ in cands], [lab for _, lab in cands])


def impressions_for(split_events: Sequence[Engagement], sampler: ImpressionNegativeSampler,
                    tag: str) -> list[Impression]:
    """One sampled impression per held-out positive of a split, in event-time order."""
    return [sampled_impression(sampler, e, tag) for e in split_events if e.positive]


def first_seen(ordered: Sequence[Engagement]) -> dict[str, float]:
    """Earliest engagement time of each item."""
    out: dict[str, float] = {}
    for e in ordered:
        if e.item_id not in out:
            out[e.item_id] = e.ts
    return out
