"""The worker's connection: bursts of publishes are not rationed by aiormq's frame queues."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast

import aio_pika
import aiormq
import pytest
import yaml
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from actionrelay.broker.broker import worker_queue
from actionrelay.broker.delivery import Delivery, Incoming
from actionrelay.broker.topology import Topology
from actionrelay.core.event import ActionResult
from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.worker import Worker
from tests.integration.support import WorkerHarness, close_connection, eventually

BURST = 200


async def underlay(channel: AbstractChannel) -> aiormq.Channel:
    return cast(aiormq.Channel, await channel.get_underlay_channel())


def result(n: int) -> ActionResult:
    return ActionResult(
        event_id=f"e-{n}",
        action="notify",
        status="success",
        status_code="http_200",
        completed_at="2026-11-27T00:00:00Z",
    )


async def burst_in_one_turn(
    worker: Worker, publish: Callable[[int], Coroutine[Any, Any, object]]
) -> None:
    """Start BURST publishes at once: after one loop turn each must be handed to aiormq."""
    channel = await underlay(worker.broker.channel)
    first_tag = channel.delivery_tag
    tasks = [asyncio.create_task(publish(n)) for n in range(BURST)]
    await asyncio.sleep(0)
    # With aiormq's queues of ten, the eleventh publish waited for the writer
    # and the others for the channel lock, a few more per loop turn.
    assert channel.delivery_tag - first_tag == BURST
    await asyncio.gather(*tasks)


async def test_a_burst_of_results_reaches_the_connection_in_one_loop_turn(
    harness: WorkerHarness,
) -> None:
    worker = await harness.start_worker()
    reply_to = await harness.reply_queue()

    await burst_in_one_turn(
        worker,
        lambda n: worker.broker.publish_result(result(n), reply_to=reply_to, correlation_id=f"{n}"),
    )
    received = await harness.collect(reply_to, BURST)
    assert sorted(int(m.correlation_id or -1) for m in received) == list(range(BURST))


async def test_a_burst_of_dead_letters_reaches_the_connection_in_one_loop_turn(
    harness: WorkerHarness,
) -> None:
    worker = await harness.start_worker()
    scratch = (await harness.channel.declare_queue(exclusive=True, auto_delete=True)).name
    for n in range(BURST):
        await harness.channel.default_exchange.publish(
            aio_pika.Message(f"{n}".encode(), message_id=f"m-{n}"), scratch
        )
    incoming: list[AbstractIncomingMessage] = await harness.collect(scratch, BURST)

    await burst_in_one_turn(
        worker, lambda n: worker.broker.dead_letter(incoming[n], {"error_type": "test"})
    )
    dead = await harness.dead_letters(BURST, check=False)  # stand-in failure headers
    assert sorted(int(m.body) for m in dead) == list(range(BURST))
    assert {m.headers["x-actionrelay-error_type"] for m in dead} == {"test"}


async def test_frame_queues_stay_unbounded_after_a_reconnect(harness: WorkerHarness) -> None:
    throttled = {"url": f"{harness.api.url}/slow", "throttling": {"max_per_second": 5}}
    (harness.settings.actions_dir / "endpoints.yaml").write_text(yaml.safe_dump([throttled]))
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    worker = await harness.start_worker()

    async def unbounded_queues() -> list[int]:
        main = await underlay(worker.broker.channel)
        holding = await underlay(worker.broker._holding[0][0])
        return [main.connection.write_queue.maxsize, main.frames.maxsize, holding.frames.maxsize]

    await eventually(lambda: worker.broker.not_ready_reason() is None, "worker consuming")
    before = await underlay(worker.broker.channel)
    assert await unbounded_queues() == [0, 0, 0]

    await asyncio.to_thread(close_connection, f"worker {worker.settings.worker_id}")
    await eventually(lambda: before.is_closed, "the old channel closed")
    await eventually(lambda: worker.broker.not_ready_reason() is None, "worker ready again", 30)
    assert await underlay(worker.broker.channel) is not before
    assert await unbounded_queues() == [0, 0, 0]

    await harness.publish({"event_id": "after", "action": "notify", "params": {"id": "1"}})
    [done] = await harness.results(1, timeout=20)
    assert (done["event_id"], done["status"]) == ("after", "success")
    holding_queue = Topology(harness.settings).holding_queue_name(
        EndpointConfig.model_validate(throttled)
    )
    await harness.channel.queue_delete(holding_queue)


def received_types(worker: Worker) -> list[str]:
    """The type of every message the worker receives from now on, in order."""
    seen: list[str] = []
    delivered = worker.settler.delivered

    def spy(message: Incoming) -> None:
        seen.append(type(message).__name__)
        delivered(message)

    worker.settler.delivered = spy  # type: ignore[method-assign]
    return seen


async def test_the_worker_receives_a_delivery_also_after_a_reconnect(
    harness: WorkerHarness,
) -> None:
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    worker = await harness.start_worker()
    await eventually(lambda: worker.broker.not_ready_reason() is None, "worker consuming")
    seen = received_types(worker)
    await harness.publish({"event_id": "before", "action": "notify", "params": {"id": "1"}})
    await harness.results(1)

    before = await underlay(worker.broker.channel)
    await asyncio.to_thread(close_connection, f"worker {worker.settings.worker_id}")
    await eventually(lambda: before.is_closed, "the old channel closed")
    await eventually(lambda: worker.broker.not_ready_reason() is None, "worker ready again", 30)
    await harness.publish({"event_id": "after", "action": "notify", "params": {"id": "2"}})
    [after] = await harness.results(1, timeout=20)

    assert after["status"] == "success"
    assert seen == ["Delivery", "Delivery"]


async def test_a_worker_queue_refuses_to_consume_without_acks(harness: WorkerHarness) -> None:
    harness.action({"name": "notify", "body": {}})
    worker = await harness.start_worker()
    queue = worker_queue(worker.broker.topology.queues[harness.settings.request_queue])

    async def ignore(_message: Delivery) -> None:
        return None

    with pytest.raises(ValueError, match="consumes with acks"):
        await queue.consume(ignore, no_ack=True)
