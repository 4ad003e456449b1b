"""Stopping, sharing and crashing workers: every event still gets its result."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.integration.support import Reply, WorkerHarness, eventually, step_event

NOTIFY: dict[str, Any] = {
    "name": "notify",
    "method": "POST",
    "body": {"n": {"$var": "n", "type": "integer"}},
}


async def publish_many(harness: WorkerHarness, count: int) -> set[str]:
    event_ids = [f"e-{n:04d}" for n in range(count)]
    for n, event_id in enumerate(event_ids):
        await harness.publish(step_event(event_id, "notify", params={"n": n}))
    return set(event_ids)


async def assert_nothing_left(harness: WorkerHarness) -> None:
    """Once every worker has stopped: no event waits for redelivery, no stray result."""
    await harness.wait_idle()
    assert await harness.depth(harness.settings.request_queue) == 0
    assert await harness.depth(harness.settings.results_queue) == 0


async def test_stop_lets_calls_in_flight_finish(harness: WorkerHarness) -> None:
    harness.action(NOTIFY)
    harness.api.default = Reply(delay=1.0)
    await harness.start_worker()
    event_ids = await publish_many(harness, 20)
    await eventually(lambda: harness.api.in_flight == 20, "20 calls in flight")
    assert await harness.depth(harness.settings.results_queue) == 0

    await harness.stop_workers()

    results = await harness.results(20, timeout=1)
    assert sorted(r["event_id"] for r in results) == sorted(event_ids)
    assert {r["status"] for r in results} == {"success"}
    assert len(harness.api.received) == 20
    await assert_nothing_left(harness)


async def test_calls_still_running_after_the_grace_are_left_for_redelivery(
    harness: WorkerHarness,
) -> None:
    harness.action(NOTIFY)
    harness.api.default = Reply(delay=1.5)
    await harness.start_worker(shutdown_grace_seconds=0.2)
    event_ids = await publish_many(harness, 5)
    await eventually(lambda: harness.api.in_flight == 5, "5 calls in flight")

    await harness.stop_workers()

    await harness.wait_idle()
    assert await harness.depth(harness.settings.request_queue) == 5
    assert await harness.depth(harness.settings.results_queue) == 0
    harness.api.default = Reply()
    await harness.start_worker()
    results = await harness.results(5)
    assert sorted(r["event_id"] for r in results) == sorted(event_ids)
    await harness.stop_workers()
    await assert_nothing_left(harness)


async def test_sigterm_finishes_calls_in_flight_and_exits_0(harness: WorkerHarness) -> None:
    harness.action(NOTIFY)
    harness.api.default = Reply(delay=1.0)
    process = await harness.spawn_worker()
    await harness.wait_consuming(1)
    event_ids = await publish_many(harness, 10)
    await eventually(lambda: harness.api.in_flight == 10, "10 calls in flight")

    assert await harness.terminate(process, signal.SIGTERM) == 0

    results = await harness.results(10, timeout=1)
    assert sorted(r["event_id"] for r in results) == sorted(event_ids)
    await assert_nothing_left(harness)
    log = await harness.process_log(process)
    assert len(log.events("action.completed")) == 10
    assert log.events("worker.stopped"), log.tail()


async def test_two_worker_processes_share_the_queue(harness: WorkerHarness) -> None:
    harness.action(NOTIFY)
    harness.api.default = Reply(delay=0.02)
    workers = [await harness.spawn_worker(worker_id=f"w{n}") for n in (1, 2)]
    await harness.wait_consuming(2)
    event_ids = await publish_many(harness, 200)

    results = await harness.results(200, timeout=20)
    for process in workers:
        assert await harness.terminate(process) == 0

    assert Counter(r["event_id"] for r in results) == Counter(event_ids)
    assert len(harness.api.received) == 200
    await assert_nothing_left(harness)
    served = [len((await harness.process_log(p)).events("action.completed")) for p in workers]
    assert sum(served) == 200
    assert min(served) > 0, f"one worker did all the work: {served}"


async def test_sigkill_mid_load_loses_no_event(harness: WorkerHarness) -> None:
    prefetch = 20
    harness.action(NOTIFY)
    harness.api.default = Reply(delay=0.05)
    doomed = await harness.spawn_worker(prefetch=prefetch, worker_id="doomed")
    await harness.wait_consuming(1)
    event_ids = await publish_many(harness, 300)
    await eventually(lambda: len(harness.api.received) >= 60, "60 calls made")

    assert await harness.terminate(doomed, signal.SIGKILL) == -signal.SIGKILL
    survivor = await harness.spawn_worker(prefetch=prefetch, worker_id="survivor")
    seen: Counter[str] = Counter()
    while missing := event_ids - set(seen):
        try:
            [message] = await harness.collect(harness.settings.results_queue, 1, timeout=15)
        except TimeoutError:
            pytest.fail(f"no result for {len(missing)} events, e.g. {sorted(missing)[:5]}")
        seen[orjson.loads(message.body)["event_id"]] += 1
    assert await harness.terminate(survivor) == 0
    for message in await harness.drain(harness.settings.results_queue):
        seen[orjson.loads(message.body)["event_id"]] += 1

    duplicates = sum(seen.values()) - len(event_ids)
    # Only events whose result was out but whose ack was not can be answered twice.
    assert 0 <= duplicates <= prefetch, seen.most_common(3)
    await harness.wait_idle()
    assert await harness.depth(harness.settings.request_queue) == 0
    survivor_log = await harness.process_log(survivor)
    assert survivor_log.events("action.completed"), "the kill came after all the work was done"


async def test_batched_acks_behind_a_slow_call_never_upset_the_broker(
    harness: WorkerHarness,
) -> None:
    """A slow call finishing after faster ones were acked alone must not make RabbitMQ
    close the channel (which would redeliver, and call again, everything in flight)."""
    harness.action({"name": "mixed"})
    harness.api.script(Reply(200, delay=0.4))  # the first call is slow, the rest are fast
    await harness.start_worker()
    for n in range(30):
        await harness.publish({"event_id": f"m-{n}", "action": "mixed"})
    results = await harness.results(30)
    await asyncio.sleep(1.0)  # a redelivery would show up as a 31st call
    assert len(harness.api.received) == 30
    assert sorted(r["event_id"] for r in results) == sorted(f"m-{n}" for n in range(30))
    assert await harness.depth(harness.settings.results_queue) == 0
    assert await harness.depth(harness.settings.request_queue) == 0
