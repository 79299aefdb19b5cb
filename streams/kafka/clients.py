"""Plain kafka-python clients outside the worker: which broker a run talks to, a producer with
that broker's quirks, and reading a topic from its start. For the tests, the chaos driver
(streams/chaos/) and bench/; the worker and the trainer have their own clients."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from streams.kafka.broker import ClientSettings


@dataclasses.dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    kind: str  # 'tansu' or 'kafka'
    settings: ClientSettings


def kafka_python_producer_kwargs(settings: ClientSettings) -> dict:
    """The broker's producer quirks as kafka-python KafkaProducer kwargs."""
    kw: dict = {}
    if settings.producer_batch_size is not None:
        kw.update(batch_size=settings.producer_batch_size, linger_ms=0)
    return kw


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0,
                abort: Callable[[], bool] | None = None) -> list:
    """Read `topic` from the beginning until `expected` records arrived, timeout, or abort()."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000)
    out: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            if abort is not None and abort():
                break
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend(batch)
    finally:
        consumer.close()
    return out
