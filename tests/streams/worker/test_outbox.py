"""The outbox: oversize outputs become dead letters, failed sends are retried then
dead-lettered, and a dead letter that cannot be sent stops the worker (FatalSendError)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from streams.kafka.messages import MessageLimits
from streams.worker.outbox import FatalSendError, Outbox


@dataclass
class Msg:
    topic: str = "engagements"
    partition: int = 0
    offset: int = 7
    key: bytes | None = b"u1"
    value: bytes | None = b'{"user_id": "u1"}'


class FakeTopic:
    """Records deliveries; `fail` sends fail (at send time or at delivery, by `mode`)."""

    def __init__(self, name: str, fail: int = 0, mode: str = "delivery") -> None:
        self.name, self.fail, self.mode = name, fail, mode
        self.delivered: list[tuple[bytes | None, bytes]] = []
        self.attempts = 0

    async def send(self, key, value):
        self.attempts += 1
        fut = asyncio.get_running_loop().create_future()
        if self.fail > 0:
            self.fail -= 1
            if self.mode == "send":
                raise RuntimeError("MessageSizeTooLargeError")
            fut.set_exception(RuntimeError("broker went away"))
        else:
            self.delivered.append((key, value))
            fut.set_result("meta")
        return fut

    def __str__(self) -> str:
        return self.name


LIMITS = MessageLimits(message_bytes=20_000, send_attempts=3)


def _box(recs: FakeTopic, dead: FakeTopic) -> Outbox:
    return Outbox(recs, dead, LIMITS)


async def _run(box: Outbox, value: bytes = b"{}") -> None:
    await box.recommend(b"u1", value, Msg())
    await box.flush()


@pytest.mark.parametrize("mode", ["send", "delivery"])
def test_a_failed_send_is_retried(mode):
    recs, dead = FakeTopic("recs", fail=2, mode=mode), FakeTopic("dead")
    box = _box(recs, dead)
    asyncio.run(_run(box))
    assert recs.delivered == [(b"u1", b"{}")] and dead.delivered == []
    assert recs.attempts == 3 and box.counts["send_retries"] == 2


def test_a_send_that_keeps_failing_is_dead_lettered_with_the_reason():
    recs, dead = FakeTopic("recs", fail=10), FakeTopic("dead")
    box = _box(recs, dead)
    asyncio.run(_run(box))
    assert recs.delivered == []
    (key, value), = dead.delivered
    letter = json.loads(value)
    assert key == b"u1" and letter["error"].startswith("send failed: RuntimeError")
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == ("engagements", 0, 7)
    assert box.counts["outputs_dead_lettered"] == 1


def test_an_oversize_output_is_never_sent_but_dead_lettered():
    recs, dead = FakeTopic("recs"), FakeTopic("dead")
    box = _box(recs, dead)
    asyncio.run(_run(box, b"x" * 30_000))
    assert recs.attempts == 0 and len(dead.delivered) == 1
    assert json.loads(dead.delivered[0][1])["error"].startswith("oversize output")


def test_when_even_the_dead_letter_fails_the_worker_must_stop():
    recs, dead = FakeTopic("recs", fail=10), FakeTopic("dead", fail=10)
    with pytest.raises(FatalSendError, match="engagements 0@7"):
        asyncio.run(_run(_box(recs, dead)))
