"""The worker's connection: a burst of publishes is not rationed by aiormq's frame queues."""

from __future__ import annotations

import asyncio
from typing import cast

import aiormq

from actionrelay.event import ActionResult
from actionrelay.worker import Worker
from tests.integration.support import WorkerHarness, close_connection, eventually


async def underlay(worker: Worker) -> aiormq.Channel:
    return cast(aiormq.Channel, await worker.broker.channel.get_underlay_channel())


def result(n: int) -> ActionResult:
    return ActionResult(
        event_id=f"e-{n}",
        action="notify",
        status="success",
        status_code="http_200",
        completed_at="2026-11-27T00:00:00Z",
    )


async def test_a_burst_of_results_reaches_the_connection_in_one_loop_turn(
    harness: WorkerHarness,
) -> None:
    worker = await harness.start_worker()
    reply_to = await harness.reply_queue()
    channel = await underlay(worker)
    first_tag = channel.delivery_tag
    publishes = [
        asyncio.create_task(
            worker.broker.publish_result(result(n), reply_to=reply_to, correlation_id=f"c-{n}")
        )
        for n in range(200)
    ]
    await asyncio.sleep(0)  # one loop turn: every publish runs up to its confirm
    # With aiormq's queues of ten, the eleventh publish waited for the writer
    # and the other 189 for the channel lock, a few more per loop turn.
    assert channel.delivery_tag - first_tag == 200
    await asyncio.gather(*publishes)
    received = await harness.collect(reply_to, 200)
    assert sorted(m.correlation_id or "" for m in received) == sorted(f"c-{n}" for n in range(200))


async def test_frame_queues_stay_unbounded_after_a_reconnect(harness: WorkerHarness) -> None:
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    worker = await harness.start_worker()
    before = await underlay(worker)
    assert before.connection.write_queue.maxsize == 0
    assert before.frames.maxsize == 0

    await asyncio.to_thread(close_connection, f"worker {worker.settings.worker_id}")
    await eventually(lambda: before.is_closed, "the old channel closed")
    await eventually(lambda: worker.broker.not_ready_reason() is None, "worker ready again", 30)
    after = await underlay(worker)
    assert after is not before
    assert after.connection.write_queue.maxsize == 0
    assert after.frames.maxsize == 0

    await harness.publish({"event_id": "after", "action": "notify", "params": {"id": "1"}})
    [done] = await harness.results(1, timeout=20)
    assert (done["event_id"], done["status"]) == ("after", "success")
