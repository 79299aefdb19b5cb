"""Item edits (issue 24): a session's key depends on its items' current text, so an item
re-published with new text is re-encoded in every session holding it at that user's next
engagement, a re-publish with the same text re-encodes nothing, and no user is scanned."""

from __future__ import annotations

import random

import numpy as np

from store import session_content_key
from streams.data.synthetic import make_items
from streams.engine.config import RefreshPolicy
from streams.engine.sessionizer import sessions
from tests.streams.engine.test_engine import _full_recompute

EDITED = "i_edit"


def _u0(catalogue: list[dict]) -> list[dict]:
    """Nine clicks in three sessions of three (7200 s gaps), the first on the item to be edited."""
    ids = [EDITED] + [it["item_id"] for it in catalogue[1:9]]
    gaps = [7200.0 if k % 3 == 0 else 60.0 for k in range(9)]
    ts = np.cumsum(gaps) + 1.0e6
    return [{"user_id": "u0", "item_id": i, "ts": float(t), "kind": "click"} for i, t in zip(ids, ts, strict=True)]


def _with_edit(catalogue: list[dict], title: str | None = None, **extra) -> list[dict]:
    """The catalogue with item 0 renamed EDITED, its title replaced when given."""
    first = {**catalogue[0], "item_id": EDITED, **extra}
    if title is not None:
        first["title"] = title
    return [first, *catalogue[1:]]


def _close(a, b, atol: float = 2e-3) -> None:
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), atol=atol)


def _assert_same_state(got, want) -> None:
    """Session keys exactly; embeddings and global embedding (the UPE's inputs) within float16
    rounding."""
    assert got.session_keys.tolist() == want.session_keys.tolist()
    assert got.summary == want.summary
    for name in ("session_embeddings", "global_embedding"):
        _close(getattr(got, name), getattr(want, name))


def test_an_edit_re_encodes_every_session_holding_the_item_at_the_next_engagement(
        engine_factory, catalogue):
    old, new = _with_edit(catalogue), _with_edit(catalogue, "Pasta Recipes From Mars")
    clicks = _u0(catalogue)
    live, fresh = engine_factory(items=False), engine_factory(items=False)
    live.upsert_items(old)
    fresh.upsert_items(new)  # a worker that only ever saw the edited catalogue
    live.process_engagements(clicks[:8])
    before = live.states.get("u0")
    live.upsert_items([new[0]])
    encoded = live.stats.sessions_encoded
    got = live.process_one(clicks[8]).recommendation
    # the edited session (first) and the grown one (last); the middle one is untouched
    assert live.stats.sessions_encoded - encoded == 2
    want = [fresh.process_one(c).recommendation for c in clicks][-1]
    after = live.states.get("u0")
    _assert_same_state(after, fresh.states.get("u0"))
    assert [x["item_id"] for x in got["items"]] == [x["item_id"] for x in want["items"]]
    _close([x["score"] for x in got["items"]], [x["score"] for x in want["items"]], atol=1e-3)
    _close(live.stored_upe("u0"), _full_recompute(live, clicks))
    # the edit matters: the first session's embedding moved, the middle one's did not
    assert after.session_keys[1] == before.session_keys[1]
    assert np.abs(after.session_embeddings[0].astype(np.float32)
                  - before.session_embeddings[0].astype(np.float32)).max() > 1e-2


def test_a_republish_with_the_same_text_re_encodes_nothing(engine_factory, catalogue):
    items = _with_edit(catalogue)
    clicks = _u0(catalogue)
    eng = engine_factory(items=False, refresh=RefreshPolicy("never"))
    eng.upsert_items(items)
    eng.process_engagements(clicks[:8])
    before = eng.states.get("u0").session_keys.tolist()
    eng.upsert_items([{**items[0], "ts": 5.0e6}, items[3]])  # new ts, same text
    encoded, recomputed = eng.stats.sessions_encoded, eng.stats.sessions_recomputed
    eng.process_one(clicks[8])
    assert eng.stats.sessions_encoded - encoded == 1  # the session that grew, nothing else
    assert eng.stats.sessions_recomputed == recomputed
    assert eng.states.get("u0").session_keys.tolist()[:2] == before[:2]


def test_the_summary_catches_up_with_an_edit_at_its_next_refresh(engine_factory, catalogue):
    """Sessions follow an edit at once; the summary and global embedding at the next refresh the
    policy makes (here every 2 events): the staleness the refresh policy already bounds."""
    old, new = _with_edit(catalogue), _with_edit(catalogue, "Pasta Recipes From Mars")
    clicks = _u0(catalogue)
    opts = dict(items=False, refresh=RefreshPolicy.parse("every_n:2"))
    live, fresh = engine_factory(**opts), engine_factory(**opts)
    live.upsert_items(old)
    fresh.upsert_items(new)
    for c in clicks[:7]:  # summaries at events 0, 2, 4 and 6
        live.process_one(c)
        fresh.process_one(c)
    live.upsert_items([new[0]])
    live.process_one(clicks[7])  # no refresh due: sessions new, summary still from old text
    fresh.process_one(clicks[7])
    a, b = live.states.get("u0"), fresh.states.get("u0")
    _close(a.session_embeddings, b.session_embeddings)
    assert np.abs(a.global_embedding.astype(np.float32) - b.global_embedding.astype(np.float32)).max() > 1e-2
    live.process_one(clicks[8])  # refresh due: caught up
    fresh.process_one(clicks[8])
    _assert_same_state(live.states.get("u0"), fresh.states.get("u0"))


def test_edits_cost_per_engagement_does_not_grow_with_the_catalogue(engine_factory, catalogue,
                                                                    monkeypatch):
    """An edit reads no user state; the next engagement reads as many item records with 30
    items as with 300 (its history and its candidates, never the catalogue)."""
    big = make_items(300, random.Random(0))  # the same first 30 items, then 270 more
    assert big[:30] == catalogue
    clicks = _u0(catalogue)
    reads = {}
    for name, items in (("small", catalogue), ("big", big)):
        eng = engine_factory(items=False, candidates=5)
        eng.upsert_items(_with_edit(items))
        eng.process_engagements(clicks[:8])
        monkeypatch.setattr(eng.states, "get", _refuse_reads)
        eng.upsert_items(_with_edit(items, "Pasta Recipes From Mars")[:1])
        monkeypatch.undo()
        reads[name] = _count_reads(eng, monkeypatch, clicks[8])
    assert reads["small"] == reads["big"]
    # the history's records at most four times (planned, finalised, re-encoded, the summary's
    # grounding tokens) plus the candidates
    assert reads["big"] <= 1 + 4 * len(clicks) + 5


def _refuse_reads(user_id: str):
    raise AssertionError(f"an item edit read the state of {user_id!r}")


def _count_reads(eng, monkeypatch, click: dict) -> int:
    """Item records read (store gets) while the engine handles one engagement."""
    calls, real = [], eng.items.get
    monkeypatch.setattr(eng.items, "get", lambda i: calls.append(i) or real(i))
    eng.process_one(click)
    monkeypatch.undo()
    return len(calls)


def test_a_state_keyed_by_ids_alone_decodes_and_is_re_encoded_once(engine_factory, catalogue):
    """States written before keys tracked text hold ids-only keys: each session misses once."""
    clicks = _u0(catalogue)
    items = _with_edit(catalogue)
    old, cont = engine_factory(items=False), engine_factory(items=False)
    old.upsert_items(items)
    cont.upsert_items(items)
    old.process_engagements(clicks[:8])
    cont.process_engagements(clicks[:8])
    state = old.states.get("u0")
    state.session_keys = np.array([session_content_key(s) for s in sessions(state)], np.uint64)
    restarted = engine_factory(items=False)  # a fresh worker: no encodings remembered
    restarted.upsert_items(items)
    restarted.states.put(state)  # through the codec, as the state table stores it
    restarted.process_one(clicks[8])
    cont.process_one(clicks[8])
    assert restarted.stats.sessions_encoded == 3
    _assert_same_state(restarted.states.get("u0"), cont.states.get("u0"))
    extra = {**clicks[8], "item_id": "i20", "ts": clicks[8]["ts"] + 60.0}
    restarted.process_one(extra)
    stats = restarted.stats  # keys now current: only the grown session (its input may be reused)
    assert stats.sessions_encoded + stats.sessions_reused == 4
