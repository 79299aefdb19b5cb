"""Warm start of the demo's users through the worker's own recovery path.

Replaying a user's whole earlier history through Kafka would run the model once per event
(minutes per user on a CPU). Instead the states are built in bulk (Engine.refresh_users: the
engine's sessionizer and round functions, one encoder pass per kept session, one summary per
user) and written to the user-state table's changelog topic before the worker starts; the
worker then restores them like after a restart (faust table recovery). The changelog record
goes to the partition that the user's engagements use, as faust itself would write it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from model.inference import EmbSumInference
from store import BoundedCache, BruteForceIndex, ItemStore, encode_user_state
from streams.engine.config import EngineConfig
from streams.engine.engine import Engine
from streams.engine.state_mapping import BytesStateMapping
from streams.kafka.replay import ensure_topics
from streams.kafka.settings import KafkaSettings

logger = logging.getLogger(__name__)


def changelog_topic(k: KafkaSettings, app_id: str = "threadrec") -> str:
    """faust's changelog name for the worker's user-state table: '{app id}-{table}-changelog'."""
    return k.changelog("user-state", app_id)


def warm_states(model: EmbSumInference, config: EngineConfig, items: Mapping[str, Mapping],
                history: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, bytes]:
    """user_id -> encoded UserState after its history, as the engine would have built it."""
    eng = Engine(model, items=ItemStore.open(None), index=BruteForceIndex(model.dim),
                 states=BytesStateMapping({}), token_cache=BoundedCache.in_memory(), config=config)
    # building user states reads item texts only: no item encoding, no index
    eng.put_texts([{**it, "item_id": item_id} for item_id, it in items.items()])
    eng.refresh_users(history)
    states = {u: eng.user_state(u) for u in history}
    return {u: encode_user_state(st) for u, st in states.items() if st}


def publish_states(k: KafkaSettings, states: Mapping[str, bytes], app_id: str = "threadrec") -> int:
    """Write states to the changelog, partitioned like the users' engagements; returns records."""
    topic = changelog_topic(k, app_id)
    ensure_topics(k, [topic, k.topic("engagements")])
    asyncio.run(_send_states(k, topic, states))
    logger.info("warm states of %d users written to %s", len(states), topic)
    return len(states)


async def _send_states(k: KafkaSettings, topic: str, states: Mapping[str, bytes]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import murmur2

    producer = AIOKafkaProducer(**k.aiokafka_producer_kwargs())
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        eng_parts = sorted(await producer.partitions_for(k.topic("engagements")))
        if len(parts) != len(eng_parts):
            raise ValueError(f"{topic} has {len(parts)} partitions, engagements {len(eng_parts)}")
        for user, value in states.items():
            key = user.encode()
            # the producer's default partitioner for engagements keyed by user_id
            part = eng_parts[(murmur2(key) & 0x7FFFFFFF) % len(eng_parts)]
            await producer.send(topic, key=key, value=value, partition=part)
        await producer.flush()
    finally:
        await producer.stop()
