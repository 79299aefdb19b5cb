"""The online loop end to end through the real broker: `threadrec trainer` follows a real worker,
learns what it served, syncs rows to `parameters`, and the worker's next recommendations use
them (their scores move off the frozen model's and they carry the trainer's version)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest

from model.records import read_jsonl
from streams.kafka.clients import consume_all
from streams.kafka.processes import stop_process
from streams.kafka.replay import replay_to_broker
from tests.fixtures.worker import ROOT
from tests.fixtures.worker import broker_settings as _settings
from tests.fixtures.worker import start_worker as _start
from tests.streams.trainer.test_parameters_sync import (  # noqa: F401 (fixtures)
    _by_source,
    _offline,
    _send,
    _split,
    _wait_stats,
    data,
    hybrid_checkpoint,
)

pytestmark = pytest.mark.broker


def _trainer(k, ckpt, root):
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "streams.cli", "trainer", "--bootstrap", k.bootstrap,
           "--broker-kind", k.broker_kind, "--topic-prefix", k.topic_prefix, "--partitions",
           str(k.partitions), "--checkpoint", str(ckpt), "--data-dir", str(root / "t"),
           "--stats-file", str(root / "trainer.json"), "--stats-every-s", "0.1",
           "--sync-every-s", "0.3", "--follow-group", "threadrec", "--lr", "0.2", "--torch-threads", "1",
           "--learn-block", "1"]  # blocks of one: every engagement served is learned, none waits for more
    return subprocess.Popen(cmd, cwd=ROOT, stdout=(root / "trainer.log").open("ab"), stderr=subprocess.STDOUT)


def test_trainer_learns_what_the_worker_served_and_the_worker_serves_its_rows(
        kafka_broker, producer_factory, hybrid_checkpoint, data, tmp_path):  # noqa: F811
    prefix = f"ol-{uuid.uuid4().hex[:8]}-"
    k = _settings(kafka_broker, prefix)
    items, events = read_jsonl(data / "items.jsonl"), read_jsonl(data / "engagements.jsonl")
    a, b = _split(events, 4)
    replay_to_broker([data / "items.jsonl"], k, progress=False)
    wlog, wstats = tmp_path / "worker.log", tmp_path / "worker.json"
    worker = _start(kafka_broker, prefix, hybrid_checkpoint, tmp_path / "w", wlog, stats=wstats)
    trainer = _trainer(k, hybrid_checkpoint, tmp_path)
    producer, rtopic = producer_factory(), k.topic("recommendations")
    try:
        _send(producer, k.topic("engagements"), a)
        assert len(consume_all(k.bootstrap, rtopic, len(a), timeout_s=150,
                               abort=lambda: worker.poll() is not None)) == len(a), wlog.read_text()[-3000:]
        tstats = _wait_stats(tmp_path / "trainer.json", trainer,
                             lambda s: sum(s["positions"].values()) == len(a) and s["syncs"] >= 1
                             and s["steps"] > 0, timeout_s=120)
        version = tstats["version"] - 1  # the last published sync
        # the worker applies a sync in paced slices and reports between them: its version can
        # reach the sync's before the sync's last rows are applied, so both are waited for
        synced = _wait_stats(wstats, worker, lambda s: s["param_version"] == version
                             and s["param_applied"] >= tstats["rows_sent"])
        _send(producer, k.topic("engagements"), b)
        recs = consume_all(k.bootstrap, rtopic, len(events), timeout_s=150,
                           abort=lambda: worker.poll() is not None)
    finally:
        stop_process(trainer, timeout_s=30)
        stop_process(worker, timeout_s=30)
    assert trainer.returncode == 0, (tmp_path / "trainer.log").read_text()[-3000:]
    assert len(recs) == len(events)
    assert tstats["engagements"] == len(a) and synced["param_applied"] >= tstats["rows_sent"] > 0
    by_src = _by_source(recs)
    engagements = consume_all(k.bootstrap, k.topic("engagements"), len(events))
    pos = {(json.loads(r.value)["user_id"], json.loads(r.value)["ts"]): (r.partition, r.offset)
           for r in engagements}
    got_b = [by_src[pos[(e["user_id"], e["ts"])]] for e in b]
    # the worker was at `version` before b was sent: every later recommendation reads it or a newer
    # sync (the trainer may still publish the rest of a's steps, or b's, before b is served)
    assert min(m["param_version"] for m in got_b) >= version >= 1
    frozen = _offline(hybrid_checkpoint, k, items)
    frozen.process_engagements(a)
    want = [r.recommendation for r in frozen.process_engagements(b)]
    moved = sum(not np.allclose([x["score"] for x in g["items"]], [x["score"] for x in w["items"]], atol=1e-4)
                or [x["item_id"] for x in g["items"]] != [x["item_id"] for x in w["items"]]
                for g, w in zip(got_b, want, strict=True))
    assert moved == len(b)  # every later recommendation reads rows the trainer moved
