"""No fault of the worker, the broker or the endpoint loses a step event."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
import orjson
import pytest

from tests.integration.support import (
    Received,
    RecordingApi,
    Reply,
    WorkerHarness,
    close_connection,
    eventually,
)

RETRY = {"max_attempts": 10, "schedule_seconds": [0.5, 1.0], "jitter": 0}


class FlakyApi(RecordingApi):
    """Answers 503 to 30% of calls, whatever the event."""

    def __init__(self, api: RecordingApi) -> None:
        super().__init__()
        self.__dict__.update(api.__dict__)
        self.rng = random.Random(7)

    def reply_for(self, received: Received) -> Reply:
        return Reply(503) if self.rng.random() < 0.3 else Reply(200, delay=0.01)


def use_flaky_api(harness: WorkerHarness) -> None:
    harness.api.__class__ = FlakyApi
    harness.api.rng = random.Random(7)  # type: ignore[attr-defined]


async def wait_until(probe: Callable[[], Awaitable[int]], timeout: float) -> None:
    """Until the async ``probe`` returns something truthy."""
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def results_by_event(harness: WorkerHarness, count: int, timeout: float) -> Counter[str]:
    """Collect results until ``count`` distinct events are answered, then any stragglers."""
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(seen)} of {count} events answered")
        queue = await harness.channel.declare_queue(harness.settings.results_queue, passive=True)
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        seen[orjson.loads(message.body)["event_id"]] += 1
    return seen


async def test_sigkill_mid_schedule_loses_nothing(harness: WorkerHarness) -> None:
    use_flaky_api(harness)
    harness.action({"name": "notify", "body": {"id": {"$var": "id"}}, "retry": RETRY})
    first = await harness.spawn_worker()
    await harness.wait_consuming(1)
    ids = [f"e-{n}" for n in range(1000)]
    for event_id in ids:
        await harness.publish(
            {"event_id": event_id, "action": "notify", "params": {"id": event_id}}
        )
    await wait_for(lambda: len(harness.api.received) >= 400, 30, "load did not start")
    first.send_signal(signal.SIGKILL)
    await first.wait()
    await harness.spawn_worker()
    answered = await results_by_event(harness, len(ids), timeout=90)
    await asyncio.sleep(1.5)  # let a late duplicate show up before counting
    answered.update(
        orjson.loads(m.body)["event_id"]
        for m in await harness.drain(harness.settings.results_queue)
    )
    assert set(answered) == set(ids)
    duplicates = sum(answered.values()) - len(ids)
    # Only events whose result was confirmed but whose ack died with the process repeat.
    assert duplicates <= harness.settings.prefetch
    keys = {r.headers["Idempotency-Key"] for r in harness.api.received}
    assert keys == set(ids)
    assert await harness.depth(harness.settings.request_queue) == 0
    assert await harness.depth(harness.settings.dead_letter_queue) == 0


async def test_poison_message_is_dead_lettered_after_the_delivery_limit(
    harness: WorkerHarness,
) -> None:
    harness.settings = harness.settings.model_copy(update={"delivery_limit": 2})
    harness.action({"name": "notify", "body": {"id": {"$var": "id"}}})
    victims: list[int] = []

    def kill_on_poison(received: Received) -> Reply:
        if received.headers["Idempotency-Key"] == "poison" and victims:
            os.kill(victims[-1], signal.SIGKILL)  # the worker "crashes" on this event
        return Reply(200)

    harness.api.reply_for = kill_on_poison  # type: ignore[method-assign]
    await harness.publish({"event_id": "poison", "action": "notify", "params": {"id": "x"}})
    for _ in range(6):
        process = await harness.spawn_worker()
        victims.append(process.pid)
        await asyncio.wait_for(process.wait(), timeout=15)
        with contextlib.suppress(TimeoutError):
            # RabbitMQ dead-letters asynchronously once the limit is passed.
            await wait_until(lambda: harness.depth(harness.settings.dead_letter_queue), 1.5)
            break
    [dead] = await harness.collect(harness.settings.dead_letter_queue, 1)
    assert orjson.loads(dead.body)["event_id"] == "poison"
    assert len(victims) == 3  # delivered limit + 1 times, then dead-lettered by the broker
    await harness.spawn_worker()
    await harness.publish({"event_id": "fine", "action": "notify", "params": {"id": "y"}})
    [result] = await harness.results(1)
    assert result["event_id"] == "fine"
    assert result["status"] == "success"


async def test_deleted_request_queue_is_declared_again_and_consumed(
    harness: WorkerHarness,
) -> None:
    harness.action({"name": "notify", "body": {"id": {"$var": "id"}}})
    worker = await harness.start_worker()
    await harness.publish({"event_id": "before", "action": "notify", "params": {"id": "1"}})
    [before] = await harness.results(1)
    assert before["event_id"] == "before"

    await harness.channel.queue_delete(harness.settings.request_queue)
    # RabbitMQ cancels the consumer; aio-pika's robust connection recovers, which
    # declares the queue again (with its quorum arguments) and consumes.
    await wait_until(lambda: consumers_on(harness, harness.settings.request_queue), 20)
    state = await harness.queue_state(harness.settings.request_queue)
    assert state.consumer_count == 1
    await eventually(lambda: worker.broker.not_ready_reason() is None, "worker ready again")

    await harness.publish({"event_id": "after", "action": "notify", "params": {"id": "2"}})
    [after] = await harness.results(1, timeout=20)
    assert after["event_id"] == "after"
    assert after["status"] == "success"


async def consumers_on(harness: WorkerHarness, queue: str) -> int:
    """Consumers on ``queue``, 0 while it does not exist (asked on a channel of its own)."""
    underlay = await harness.channel.get_underlay_channel()
    channel = await underlay.connection.channel()
    try:
        return (await channel.queue_declare(queue, passive=True)).consumer_count or 0
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0
    finally:
        if not channel.is_closed:
            await channel.close()


async def test_a_call_that_outlives_its_connection_ends_quietly_and_is_redelivered(
    harness: WorkerHarness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.api.script(Reply(200, delay=4.0))  # the first call outlives the connection
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    worker = await harness.start_worker()
    await harness.publish({"event_id": "e-1", "action": "notify", "params": {"id": "1"}})
    await wait_for(lambda: len(harness.api.received) >= 1, 10, "the call did not start")
    # RabbitMQ drops the worker's connection while the call is open: the call's
    # task is cancelled with its channel, and the event comes back after the reconnect.
    await asyncio.to_thread(close_connection, f"worker {worker.settings.worker_id}")
    [result] = await harness.results(1, timeout=30)
    assert result["event_id"] == "e-1"
    assert result["status"] == "success"
    assert len(harness.api.received) == 2  # at-least-once: called again after redelivery
    await asyncio.sleep(4.5)  # the first call's answer, had it been kept, would be in
    assert await harness.depth(harness.settings.results_queue) == 0
    # No task died with an exception. (aio-pika logs its own reconnect troubles.)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
