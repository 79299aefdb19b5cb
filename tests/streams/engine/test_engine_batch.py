"""Engine.process_batch: states in, changed states out, nothing stored by the engine."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from model.sessions import sessionize
from tests.streams.engine.test_engine import _content_keys, _full_recompute


def test_process_batch_returns_changed_states_and_stores_nothing(engine_factory, events):
    eng, ref = engine_factory(), engine_factory()
    first, rest = events[:20], events[20:]
    out = eng.process_batch(first, None, {})
    ref.process_engagements(first)
    users = {e["user_id"] for e in first}
    assert set(out.changed) == users and len(out.results) == len(first)
    assert all(eng.states.get(u) is None for u in users)
    for u, st in out.changed.items():  # the UPE's inputs (it is recomputed, not stored)
        _same_vectors(st, ref.states.get(u))
    # the next batch starts from what the previous one returned, as the worker's table does
    later = {e["user_id"] for e in rest}
    out2 = eng.process_batch(rest, None, {u: out.changed.get(u) for u in later})
    ref.process_engagements(rest)
    for u, st in out2.changed.items():
        want = ref.states.get(u)
        assert st.version == want.version and list(st.item_ids) == list(want.item_ids)
        _same_vectors(st, want)


def _same_vectors(a, b) -> None:
    np.testing.assert_array_equal(a.session_embeddings, b.session_embeddings)
    np.testing.assert_array_equal(a.global_embedding, b.global_embedding)


def test_impressions_and_unknown_items_change_no_state(engine_factory, events):
    eng = engine_factory()
    e = events[0]
    out = eng.process_batch([{**e, "kind": "impression"}, {**e, "item_id": "nope"}], None, {})
    assert out.changed == {}
    assert out.results[0].skipped == "impression" and out.results[1].error.startswith("unknown item")


def _src(partition: int, offset: int) -> dict:
    return {"topic": "engagements", "partition": partition, "offset": offset, "ts": None}


def test_a_redelivered_engagement_is_recognised_by_the_state_itself(engine_factory, events):
    """Effectively-once: the state records the last applied (partition, offset)."""
    eng = engine_factory()
    user_events = [e for e in events if e["user_id"] == events[0]["user_id"]][:4]
    sources = [_src(1, 10 + k) for k in range(len(user_events))]
    first = eng.process_batch(user_events[:3], sources[:3], {})
    state = first.changed[events[0]["user_id"]]
    assert state.applied == {1: 12}
    # the state write happened, the offsets record did not: the batch comes again, plus one
    again = eng.process_batch(user_events, sources, {state.user_id: state})
    assert [r.skipped for r in again.results] == ["duplicate"] * 3 + [None]
    assert again.results[3].recommendation is not None
    st = again.changed[state.user_id]
    assert st.total_events == 4 and len(st.item_ids) == 4 and st.applied == {1: 13}


def test_applied_offsets_survive_the_codec():
    from store import UserState, decode_user_state, encode_user_state

    st = UserState(user_id="u", applied={0: 5, 3: 2**40})
    assert decode_user_state(encode_user_state(st)).applied == {0: 5, 3: 2**40}


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hst.lists(hst.tuples(hst.integers(0, 29), hst.sampled_from([5.0, 60.0, 4000.0])),
                 min_size=10, max_size=32))
def test_engine_state_past_every_cap_equals_a_full_recompute(engine_factory, steps):
    """Histories that reach size splits, dropped sessions and the history cap: sessions, keys
    and UPE kept event by event equal a recompute from the whole history."""
    eng = engine_factory()
    ts, history = 1.0e6, []
    for item, gap in steps:
        ts += gap
        history.append({"user_id": "p", "item_id": f"i{item}", "ts": ts, "kind": "click"})
        eng.process_one(history[-1])
    st_ = eng.states.get("p")
    want = sessionize([(e["item_id"], e["ts"]) for e in history], eng.config.session_rule)
    assert st_.session_keys.tolist() == _content_keys(eng, want)
    np.testing.assert_allclose(eng.stored_upe("p"), _full_recompute(eng, history),
                               atol=2e-3, rtol=1e-3)
