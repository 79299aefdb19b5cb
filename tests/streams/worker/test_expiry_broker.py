"""Through the real broker: a `threadrec worker` sweeps its rocksdb table in slices and deletes
exactly the users idle past the TTL, each through its own changelog partition."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from model.records import read_jsonl
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import replay_to_broker
from streams.worker.process import cli_flag
from tests.fixtures.worker import broker_settings as _settings
from tests.fixtures.worker import start_worker as _start

pytestmark = pytest.mark.broker
TTL_S = 50.0


def _sweep_flags() -> tuple[str, ...]:
    flags = dict(ttl_s=TTL_S, sweep_every_s=0.5, sweep_slice_keys=2, sweep_slice_every_s=0.05)
    return tuple(w for k, v in flags.items() for w in cli_flag(k, v))


def _latest(records: list) -> dict[bytes, object]:
    """The last record of each key (a changelog's current view)."""
    out = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.key] = r
    return out


def test_a_worker_expires_idle_users_in_slices_through_their_partitions(
        kafka_broker, producer_factory, tiny_checkpoint, prepared, tmp_path):
    prefix = f"ex-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    events = read_jsonl(prepared / "engagements.jsonl")
    log = tmp_path / "worker.log"
    worker = _start(kafka_broker, prefix, tiny_checkpoint, tmp_path / "w", log, extra=_sweep_flags())
    alive = lambda: worker.poll() is not None  # noqa: E731
    try:
        replay_to_broker(prepared, k, progress=False)
        recs = consume_all(kafka_broker.bootstrap, k.topic("recommendations"), len(events),
                           timeout_s=150, abort=alive)
        assert len(recs) == len(events), log.read_text()[-3000:]
        home = {r.key: r.partition for r in
                consume_all(kafka_broker.bootstrap, k.topic("engagements"), len(events), timeout_s=30)}
        # one engagement per partition, TTL + 50 s past every replayed one: the watermark moves
        # and every replayed user is idle; the two new users are not
        late = max(e["ts"] for e in events) + TTL_S + 50
        producer = producer_factory()
        for p in range(k.partitions):
            value = {"user_id": f"waker{p}", "item_id": events[0]["item_id"], "ts": late, "kind": "click"}
            producer.send(k.topic("engagements"), key=f"waker{p}".encode(),
                          value=json.dumps(value).encode(), partition=p)
        producer.flush()
        changelog = f"{prefix}threadrec-user-state-changelog"
        deadline, latest = time.monotonic() + 90, {}
        while time.monotonic() < deadline and not alive():
            latest = _latest(consume_all(kafka_broker.bootstrap, changelog, 10**6, timeout_s=3))
            if all(key in latest and latest[key].value is None for key in home):
                break
    finally:
        stop_process(worker, timeout_s=30)
    tombstones = {key: r.partition for key, r in latest.items() if r.value is None}
    assert tombstones == home, log.read_text()[-3000:]  # every replayed user, on its partition
    for p in range(k.partitions):
        assert latest[f"waker{p}".encode()].value is not None  # active: kept
