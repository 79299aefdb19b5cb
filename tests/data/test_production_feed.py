"""The synthetic production-like feed: seeded bytes, the prepared format, Zipf popularity with
churn, sessions, and a held-out tail after train; also `threadrec data synth`."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from model.dataset import load_prepared
from model.records import ENGAGED_KINDS, read_jsonl
from streams.cli import main
from streams.data.production_feed import FeedConfig, vocabulary, write_feed
from streams.errors import DataError
from streams.kafka.replay import load_replay

FILES = ("items.jsonl", "engagements.jsonl", "train.jsonl", "valid.jsonl", "test.jsonl",
         "impressions_valid.jsonl", "impressions_test.jsonl", "meta.json")
CFG = FeedConfig(items=3000, users=400, events_per_user=15, seed=7)


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    out = tmp_path_factory.mktemp("feed")
    return out, write_feed(CFG, out)


def test_same_seed_same_bytes_other_seed_other_bytes(feed, tmp_path):
    out, _ = feed
    write_feed(CFG, tmp_path / "again")
    assert all((out / f).read_bytes() == (tmp_path / "again" / f).read_bytes() for f in FILES)
    write_feed(FeedConfig(items=3000, users=400, events_per_user=15, seed=8), tmp_path / "other")
    assert (out / "engagements.jsonl").read_bytes() != (tmp_path / "other" / "engagements.jsonl").read_bytes()
    assert (out / "items.jsonl").read_bytes() != (tmp_path / "other" / "items.jsonl").read_bytes()


def test_writes_valid_prepared_data(feed):
    out, meta = feed
    data = load_prepared(out)
    assert len(data.items) == meta["counts"]["items"] == CFG.items
    assert len(data.train) + len(data.valid) + len(data.test) == meta["counts"]["engagements"]
    items, engagements = load_replay(out)  # strict: any bad line raises
    assert len(items) == CFG.items and len(engagements) == meta["counts"]["engagements"]
    born = {it.item_id: it.ts for it in items}
    assert all(born[e.item_id] <= e.ts for e in engagements)  # never engaged before published
    assert all(e.kind in ENGAGED_KINDS for e in engagements)
    assert Counter(e.kind for e in engagements).most_common(1)[0][0] == "click"
    for it in items[:200]:
        assert 2 <= len(it.title.split()) <= 8 and 10 <= len(it.body.split()) <= 60
        assert it.category
    assert len({it.category for it in items}) == CFG.categories
    pairs = [(e.user_id, e.item_id) for e in engagements]
    assert len(pairs) == len(set(pairs))  # a user engages with an item once


def test_impressions_hold_the_positive_and_unseen_published_negatives(feed):
    out, meta = feed
    data = load_prepared(out)
    born = {i: it["ts"] for i, it in data.items.items()}
    history = [*data.train, *data.valid, *data.test]
    for split in ("valid", "test"):
        imps = data.impressions(split)
        assert len(imps) == meta["split_counts"][f"impressions_{split}"] == len(getattr(data, split))
        for imp in imps[:100]:
            assert sum(imp["labels"]) == 1 and len(imp["candidates"]) == 5
            seen = {e["item_id"] for e in history if e["user_id"] == imp["user_id"] and e["ts"] <= imp["ts"]}
            negs = [c for c, lab in zip(imp["candidates"], imp["labels"], strict=True) if not lab]
            assert not set(negs) & seen and len(set(negs)) == 4
            assert all(born[c] <= imp["ts"] for c in negs)


def test_popularity_is_zipf_like(feed):
    out, meta = feed
    counts = Counter(e["item_id"] for e in read_jsonl(out / "engagements.jsonl"))
    top = sum(n for _, n in counts.most_common(CFG.items // 100))
    share = top / sum(counts.values())
    assert share > 0.15  # the top 1% of items: 15x their uniform share at least
    assert meta["production_feed"]["top_1pct_items_share"] == pytest.approx(share)


def test_churn_items_born_later_get_engaged(feed):
    out, _ = feed
    data = load_prepared(out)
    late = {i for i, it in data.items.items() if it["ts"] > CFG.start_ts + CFG.span_s / 2}
    assert len(late) > CFG.items / 4  # items keep arriving over the span
    engaged_late = {e["item_id"] for e in data.test} & late
    assert len(engaged_late) > 10
    # new items take over: the test period's engagements go mostly to items born in the span
    in_span = [e for e in data.test if data.items[e["item_id"]]["ts"] > CFG.start_ts]
    assert len(in_span) > 0.8 * len(data.test)


def test_held_out_tail_comes_after_train(feed):
    _, meta = feed
    data = load_prepared(feed[0])
    valid_at, test_at = meta["production_feed"]["cut_ts"]["valid"], meta["production_feed"]["cut_ts"]["test"]
    assert test_at == pytest.approx(CFG.start_ts + (1 - CFG.tail) * CFG.span_s)
    assert max(e["ts"] for e in data.train) < valid_at <= min(e["ts"] for e in data.valid)
    assert max(e["ts"] for e in data.valid) < test_at <= min(e["ts"] for e in data.test)
    assert data.test and data.valid


def test_sessions_are_bursty(feed):
    out, _ = feed
    rows = read_jsonl(out / "engagements.jsonl")
    by_user: dict[str, list[float]] = {}
    for e in rows:
        by_user.setdefault(e["user_id"], []).append(e["ts"])
    gaps = np.concatenate([np.diff(ts) for ts in by_user.values() if len(ts) > 1])
    assert np.median(gaps) < 600  # most gaps are inside a session
    assert np.mean(gaps > 3600) > 0.1  # and sessions are far apart


def test_vocabulary_is_real_words():
    words, source = vocabulary(500)
    assert len(words) == len(set(words)) == 500
    assert all(w.isalpha() and w.islower() for w in words)
    assert source.endswith("vocab.txt") or source == "built-in"


def test_vocabulary_without_the_packaged_tokenizer_is_built_in(monkeypatch):
    import streams.data.production_feed as feed_mod

    monkeypatch.setattr(feed_mod.importlib.util, "find_spec", lambda name: None)
    words, source = vocabulary(3000)
    assert source == "built-in" and len(set(words)) == 3000 and "time" in words


def test_bad_shape_is_a_data_error():
    with pytest.raises(DataError, match="tail"):
        FeedConfig(tail=0.6, valid=0.5)


def test_cli_data_synth(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--items", "300", "--users", "30", "--events-per-user", "8",
                 "--seed", "2", "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"]["items"] == 300 and meta["seed"] == 2
    assert "synthetic feed" in capsys.readouterr().out
