"""A small Faust worker for the broker-backed foundation test.

It reads keyed integer events from a 4-partition topic, keeps a per-key running
count and sum in a rocksdb-backed (rocksdict) table, and writes the running
values to an output topic. Run: python -m tests.integration.counter_app
(configuration from env, set by the test).
"""

from __future__ import annotations

import json
import os

import faust

from streams.kafka.broker import settings_for

BOOTSTRAP = os.environ["COUNTER_BOOTSTRAP"]
KIND = os.environ.get("COUNTER_BROKER_KIND", "tansu")
PREFIX = os.environ["COUNTER_PREFIX"]

app = faust.App(
    f"{PREFIX}-app",
    broker=f"kafka://{BOOTSTRAP}",
    store="rocksdb://",
    datadir=os.environ["COUNTER_DATADIR"],
    topic_partitions=4,
    topic_replication_factor=1,
    web_enabled=False,
    **settings_for(KIND).faust_kwargs(),
)
source = app.topic(f"{PREFIX}-in", key_serializer="raw", value_serializer="raw", partitions=4)
sink = app.topic(f"{PREFIX}-out", key_serializer="raw", value_serializer="raw", partitions=4)
totals = app.Table("totals", default=lambda: [0, 0], partitions=4)


@app.agent(source)
async def count(stream):
    async for event in stream.events():
        key, value = event.key, event.value
        k = key.decode()
        n, s = totals[k]
        n, s = n + 1, s + int(value)
        totals[k] = [n, s]  # reassign so the changelog sees the change
        await sink.send(key=key, value=json.dumps({"key": k, "n": n, "sum": s, "offset": event.message.offset}).encode())


if __name__ == "__main__":
    app.main()
