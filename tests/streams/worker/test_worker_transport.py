"""The worker's consumer waits at the broker as long as the settings say, not faust's 1500 ms."""

from __future__ import annotations

import asyncio

from streams.kafka.settings import KafkaSettings
from streams.worker.app import create_app
from streams.worker.config import WorkerSettings


def test_the_consumers_fetch_wait_comes_from_the_kafka_settings(tmp_path):
    async def fetch_wait(ms: int | None) -> int:
        kafka = KafkaSettings() if ms is None else KafkaSettings(fetch_max_wait_ms=ms)
        app = create_app(WorkerSettings(data_dir=tmp_path, kafka=kafka.decided(brokers=1)))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # built, never started
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(fetch_wait(37)) == 37
    assert asyncio.run(fetch_wait(None)) == KafkaSettings.model_fields["fetch_max_wait_ms"].default
