"""streams/data/bulk_load.py without a broker: the warm state is what the engine would keep
(its session keys are the engine's, so nothing is re-encoded on the user's next engagement) and
the vectors are deterministic and decode as the replica reads them."""

from __future__ import annotations

import numpy as np

from model.sessions import SessionRule
from store import EncoderFingerprint, decode_item_vector, decode_user_state, encode_user_state
from streams.data.bulk_load import (
    Catalogue,
    VectorMaker,
    VectorSpec,
    histories,
    item_blocks,
    vector_records,
    warm_state,
)
from streams.data.production_feed import FeedConfig, write_feed
from streams.engine.engine import Engine
from streams.engine.sessionizer import session_keys


def test_warm_states_carry_the_engines_session_keys_and_the_kept_history(tiny_model, tmp_path):
    write_feed(FeedConfig(items=120, users=6, events_per_user=40, seed=5), tmp_path)
    fp = EncoderFingerprint(tiny_model.identity, tiny_model.dim, tiny_model.config.n)
    maker = VectorMaker(VectorSpec(clusters=4), fp)
    cat = Catalogue({}, np.zeros((120, fp.dim), np.float16), [], [])
    vectors = [decode_item_vector(v) for b, lines in item_blocks(tmp_path / "items.jsonl")
               for t, _, v in vector_records(maker, b, lines, cat) if t == "item-vectors"]
    assert len(vectors) == 120 and all(v.encoder == fp for v in vectors)
    np.testing.assert_array_equal(np.stack([v.item.vector for v in vectors]), maker.vectors(120))
    eng = Engine.in_memory(tiny_model)
    eng.put_encoded(vectors)

    rule, trimmed = SessionRule.of(tiny_model.config), 0
    for user, events in histories(tmp_path).items():
        state = decode_user_state(encode_user_state(warm_state(user, events, rule, 1000, cat)))
        assert state.session_keys.tolist() == session_keys(state, eng.items)
        kept = len(state.item_ids)
        assert state.item_ids == [i for i, _, _ in events[-kept:]] and kept <= rule.max_history
        assert len(state.session_embeddings) == state.num_sessions <= rule.max_sessions
        assert state.total_events == len(events)
        earlier = {i for i, _, _ in events[:-kept]}
        assert all(i in state.seen_items() for i in earlier)
        trimmed += bool(earlier)
    assert trimmed  # some histories were longer than the rule keeps


def test_fitted_vectors_follow_the_encoded_items_norms_and_repeat(tmp_path):
    rng = np.random.default_rng(0)
    dim = 24
    encoded = rng.standard_normal((2000, dim)).astype(np.float32) * rng.lognormal(0, 0.3, (2000, 1)).astype(np.float32)
    np.save(tmp_path / "items.npy", encoded)
    fp = EncoderFingerprint(b"e" * 16, dim, 3)
    spec = VectorSpec(fitted_from=str(tmp_path))
    vec, cpe = VectorMaker(spec, fp).block(0, 500)
    again, _ = VectorMaker(spec, fp).block(0, 500)
    np.testing.assert_array_equal(vec, again)  # the same spec gives the same vectors
    assert cpe.shape == (500, 3, dim)
    norms, want = np.linalg.norm(vec, axis=1), np.linalg.norm(encoded, axis=1)
    assert norms.std() > 0.1 * norms.mean()  # not unit vectors: the index's norm bands apply
    assert abs(np.median(norms) - np.median(want)) < 0.15 * np.median(want)
    assert VectorSpec().describe()["generator"].startswith("store.synthetic.ClusteredVectors")
    assert spec.describe()["generator"].startswith("store.synthetic.FittedVectors")
