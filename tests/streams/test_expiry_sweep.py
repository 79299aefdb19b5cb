"""The expiry sweep drops users inactive for ttl_s of their partition's event time."""

from __future__ import annotations

from types import SimpleNamespace

from store import UserState, decode_user_state, encode_user_state
from streams.worker.config import WorkerSettings
from streams.worker.expiry import home_partition, sweep_expired
from streams.worker.runtime import Runtime
from streams.worker.topics import Tables

DAY = 86_400.0


def _state(user: str, last_seen: float, partition: int | None) -> bytes:
    applied = {} if partition is None else {partition: 5}
    return encode_user_state(UserState(user_id=user, last_seen=last_seen, applied=applied))


def test_inactive_users_expire_by_their_partitions_event_time():
    engine = SimpleNamespace(config=SimpleNamespace(ttl_s=30 * DAY),
                             stats=SimpleNamespace(expired=0))
    runtime = Runtime(WorkerSettings(), engine=engine)
    runtime.clock.watermarks.update({0: 100 * DAY})  # partition 1 has seen nothing yet
    states = {b"old": _state("old", 60 * DAY, 0), b"recent": _state("recent", 80 * DAY, 0),
              b"other": _state("other", 1 * DAY, 1), b"none": _state("none", 1 * DAY, None)}
    tables = Tables(states=dict(states), offsets={})  # type: ignore[arg-type]
    assert sweep_expired(runtime, tables, "engagements") == 1
    assert set(tables.states) == {b"recent", b"other", b"none"}
    assert engine.stats.expired == 1
    runtime.clock.watermarks[1] = 40 * DAY
    assert sweep_expired(runtime, tables, "engagements") == 1
    assert set(tables.states) == {b"recent", b"none"}


def test_home_partition_is_where_the_latest_event_came_from():
    st = decode_user_state(_state("u", 1.0, 3))
    assert home_partition(st) == 3
    st.applied = {0: 9, 2: 40}
    assert home_partition(st) == 2
