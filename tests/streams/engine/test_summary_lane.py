"""Summaries off the recommendation path: in lane mode a refresh queues a job and the round ranks
at once with the last global embedding; the finished summary reaches the state at the user's
next batch, and each recommendation says how far its summary lags."""

from __future__ import annotations

import numpy as np

from streams.engine.summary_lane import LaneLimits, SummaryJob


def _user_events(events, n):
    user = events[0]["user_id"]
    return [e for e in events if e["user_id"] == user][:n]


def test_lane_mode_queues_instead_of_generating_and_applies_at_the_next_batch(engine_factory, events):
    eng = engine_factory(summary_lane=True, refresh=_every_event())
    mine = _user_events(events, 3)
    first = eng.process_one(mine[0])
    lane = eng.lane
    assert eng.stats.summaries == 0 and lane.pending() == 1  # nothing generated on the path
    assert first.recommendation["summary"] is None and len(first.recommendation["items"]) > 0
    assert lane.run_once() == 1 and lane.pending() == 0
    second = eng.process_one(mine[1])
    state = eng.states.get(mine[0]["user_id"])
    assert state.summary and len(state.global_embedding) == eng.model.dim
    assert state.summary_events == 1 and state.summary_ts == mine[0]["ts"]
    assert second.recommendation["summary"] == state.summary
    assert second.recommendation["summary_age"] == {"events": 1, "seconds": mine[1]["ts"] - mine[0]["ts"]}
    assert lane.stats()["lane_applied"] == 1 and lane.stats()["lane_wait_p99_s"] >= 0


def test_sync_mode_summary_is_fresh_and_lane_results_match_it(engine_factory, events):
    sync, lane_eng = engine_factory(refresh=_every_event()), engine_factory(summary_lane=True, refresh=_every_event())
    mine = _user_events(events, 2)
    s1 = sync.process_one(mine[0]).recommendation
    assert s1["summary_age"] == {"events": 0, "seconds": 0.0}
    sync.process_one(mine[1])
    lane_eng.process_one(mine[0])
    lane_eng.lane.run_once()
    lane_eng.process_one(mine[1])
    a, b = sync.states.get(mine[0]["user_id"]), lane_eng.states.get(mine[0]["user_id"])
    # the lane's summary of event 1 equals the synchronous engine's summary after event 1
    fresh = engine_factory(refresh=_every_event())
    fresh.process_one(mine[0])
    ref = fresh.states.get(mine[0]["user_id"])
    assert b.summary == ref.summary
    np.testing.assert_array_equal(b.global_embedding, ref.global_embedding)
    assert a.summary_events == 2 and b.summary_events == 1


def test_the_worker_runs_the_lane_through_engine_doors(engine_factory, events):
    eng, inline = engine_factory(summary_lane=True, refresh=_every_event()), engine_factory()
    assert not eng.lane_due(False, 0.0) and eng.run_lane() == 0  # nothing queued yet
    eng.process_one(_user_events(events, 1)[0])
    assert not eng.lane_due(True, 60.0)  # beside a batch, until the job is overdue
    assert eng.lane_due(False, 60.0) and eng.run_lane() == 1 and not eng.lane_due(False, 0.0)
    assert not inline.lane_due(False, 0.0) and inline.run_lane() == 0  # no lane: nothing to run


def test_the_engine_config_bounds_its_lane(engine_factory):
    lane = engine_factory(summary_lane=True, lane=LaneLimits(max_jobs=3, max_bytes=10_000, batch=2)).lane
    assert (lane.max_jobs, lane.max_bytes, lane.batch) == (3, 10_000, 2)


def test_lane_keeps_one_job_per_user_and_drops_the_oldest_when_full(tiny_model):
    from streams.engine.summary_lane import SummaryLane

    lane = SummaryLane(tiny_model, LaneLimits(max_jobs=2))
    for user, basis in (("a", 1), ("b", 1), ("a", 2), ("c", 1)):
        lane.submit(SummaryJob(user, basis, float(basis), []))
    assert lane.pending() == 2 and lane.dropped == 1 and lane.queued == 4
    assert list(lane._jobs) == ["a", "c"] and lane._jobs["a"].basis == 2  # b was the oldest


def _every_event():
    from streams.engine.config import RefreshPolicy

    return RefreshPolicy.parse("every_event")


def test_lane_is_bounded_by_the_bytes_its_jobs_hold(tiny_model):
    """Under overload jobs pile up; their token states must not grow the worker without bound."""
    from model.inference import SessionEncoding
    from streams.engine.summary_lane import SummaryLane

    def job(user: str) -> SummaryJob:
        s = SessionEncoding(np.zeros(8, np.float16), np.zeros((100, 8), np.float16))  # 1,616 bytes
        return SummaryJob(user, 1, 1.0, [s])

    lane = SummaryLane(tiny_model, LaneLimits(max_jobs=100, max_bytes=5_000))
    for user in "abcde":
        lane.submit(job(user))
    assert lane.pending() == 3 and lane.dropped == 2 and list(lane._jobs) == ["c", "d", "e"]
    assert lane._bytes == 3 * 1_616
    lane.submit(job("d"))  # a newer job of a queued user replaces it: no drop
    assert lane.pending() == 3 and lane.dropped == 2 and lane._bytes == 3 * 1_616


def test_lane_runs_between_batches_or_when_its_oldest_job_is_overdue(tiny_model, monkeypatch):
    from streams.engine import summary_lane
    from streams.engine.summary_lane import SummaryLane

    lane = SummaryLane(tiny_model)
    assert not lane.due(engine_busy=False, yield_s=2.0)  # nothing queued
    now = [100.0]
    monkeypatch.setattr(summary_lane.time, "monotonic", lambda: now[0])
    lane.submit(SummaryJob("a", 1, 1.0, [], queued=now[0]))
    assert lane.due(engine_busy=False, yield_s=2.0)
    assert not lane.due(engine_busy=True, yield_s=2.0)  # a batch is in flight: wait
    now[0] += 2.5
    assert lane.due(engine_busy=True, yield_s=2.0)  # overdue: run beside the batch


def test_the_lane_beside_batches_takes_at_most_its_share_of_the_time():
    from streams.engine.pacer import LaneDuty

    duty = LaneDuty(share=0.25)
    assert duty.allows(engine_busy=True, now=10.0)  # never run yet
    duty.ran(engine_busy=True, seconds=0.5, now=10.5)  # overdue, beside a batch: rests 3 x 0.5 s
    assert not duty.allows(engine_busy=True, now=11.9) and duty.allows(engine_busy=True, now=12.0)
    assert duty.allows(engine_busy=False, now=11.0)  # between batches the cores are idle: run
    duty.ran(engine_busy=False, seconds=0.5, now=12.5)  # a run between batches costs no rest
    assert duty.allows(engine_busy=True, now=12.5)
    # back to back under overload: runs of 0.5 s every 2 s, a quarter of the time
    starts, now = [], 20.0
    while now < 40.0:
        if duty.allows(True, now):
            starts.append(now)
            now += 0.5
            duty.ran(True, 0.5, now)
        now += 0.01
    assert 9 <= len(starts) <= 10 and 0.5 * len(starts) / 20.0 <= 0.25


def test_summaries_are_grounded_in_the_users_sessions_inline_and_in_the_lane(engine_factory, events, catalogue,
                                                                             monkeypatch):
    """The engine hands summarize the grounding of the user's own sessions (their tokens and
    spans, plus the template's ids): a job carries it through the lane; a checkpoint that does not
    ground passes none."""
    from model.text import item_text

    first = _user_events(events, 1)[0]
    item = next(it for it in catalogue if it["item_id"] == first["item_id"])
    lane_eng, inline = engine_factory(summary_lane=True, refresh=_every_event()), engine_factory(refresh=_every_event())
    seen = []
    real = type(inline.model).summarize
    monkeypatch.setattr(type(inline.model), "summarize", lambda self, users, allowed=None: (
        seen.append(allowed), real(self, users, allowed))[1])
    inline.process_one(first)
    lane_eng.process_one(first)
    job = next(iter(lane_eng.lane._jobs.values()))
    mine = set(inline.model.tokenizer(item_text(item), add_special_tokens=False)["input_ids"])
    assert mine <= set(seen[0][0].ids.tolist()) and mine <= set(job.allowed.ids.tolist())
    assert mine <= set(job.allowed.history.tolist())  # the spans a summary may copy: its sessions'
    np.testing.assert_array_equal(seen[0][0].ids, job.allowed.ids)  # the same rule on both paths
    np.testing.assert_array_equal(seen[0][0].history, job.allowed.history)
    assert lane_eng.lane.run_once() == 1 and seen[-1][0] is not None  # the lane passes them on
    monkeypatch.setattr(inline.model.config, "grounded_summaries", False)
    inline.process_one(_user_events(events, 2)[1])
    assert seen[-1] is None


def _cold(eng):
    """eng with a token cache that keeps nothing: every older session's states are a miss."""
    from store import BoundedCache, CacheConfig

    eng.token_cache = BoundedCache.in_memory(CacheConfig(max_bytes=1))
    return eng


def test_a_cold_cache_recompute_runs_in_the_lane_and_gives_the_inline_summary(engine_factory, events):
    """Lane mode: the round encodes no older session for a summary; the lane encodes the ones its
    job carries as text (a replaced job's never), and its summary is the inline path's exactly."""
    inline = _cold(engine_factory(refresh=_every_event()))
    lane_eng = _cold(engine_factory(summary_lane=True, refresh=_every_event()))
    mine = _user_events(events, 9)
    user = mine[0]["user_id"]
    for e in mine:
        inline.process_one(e)
        lane_eng.process_one(e)  # the lane does not run: each job replaces the user's last one
    sessions = inline.states.get(user).num_sessions
    assert sessions > 2 and inline.stats.sessions_recomputed >= sessions - 1
    job = lane_eng.lane._jobs[user]
    assert sum(isinstance(s, str) for s in job.sessions) == sessions - 1  # all but this round's
    assert lane_eng.stats.sessions_recomputed == 0 and lane_eng.lane.run_once() == 1
    assert lane_eng.status()["lane_recomputed"] == sessions - 1  # only the last job's, once
    got, want = lane_eng.lane.take(user), inline.states.get(user)
    assert got.text == want.summary and got.basis == want.summary_events
    np.testing.assert_array_equal(got.embedding, want.global_embedding)


def test_lane_counts_session_texts_in_its_bytes_and_encodes_each_text_once(tiny_model):
    from model.inference import SessionEncoding
    from streams.engine.summary_lane import SummaryLane

    d = tiny_model.dim
    s = SessionEncoding(np.zeros(d, np.float16), np.zeros((4, d), np.float16))
    held = s.embedding.nbytes + s.token_states.nbytes
    lane = SummaryLane(tiny_model, LaneLimits(max_jobs=100, max_bytes=held + 4_000))
    lane.submit(SummaryJob("a", 1, 1.0, [s, "rivers é"]))  # 9 bytes in utf-8
    lane.submit(SummaryJob("b", 1, 1.0, ["rivers é"]))
    assert lane._bytes == held + 9 + 9
    lane.submit(SummaryJob("c", 1, 1.0, ["x" * 3_990]))  # over the bound: the oldest goes
    assert list(lane._jobs) == ["b", "c"] and lane.dropped == 1
    lane.submit(SummaryJob("c", 2, 2.0, [s]))  # replaced before it ran: its text is never encoded
    lane.submit(SummaryJob("d", 1, 1.0, [s, "rivers é"]))  # b's text: encoded once for both
    assert lane.run_once() == 3 and lane.stats()["lane_recomputed"] == 1
    assert list(lane._results) == ["b", "c", "d"]
