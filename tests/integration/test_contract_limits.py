"""Every field at the longest and most multibyte value the contract allows, and one past.

An event within the limits is answered once, with one call; one past a limit gets
its ``invalid`` result and one dead letter, with no call. Nothing loops: an
``event_id`` of 249 UTF-8 bytes and more used to give a ``message_id`` over
AMQP's 255 bytes, a publish that raised, and a call on every redelivery.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aio_pika
import orjson
import pytest

from actionrelay.core.event import MAX_EVENT_BYTES, MAX_HEADERS_BYTES
from tests.integration.support import WorkerHarness, step_event

NOTIFY: dict[str, Any] = {
    "name": "notify",
    "body": {"id": {"$var": "id", "type": "string"}},
    "retry": {"max_attempts": 1},
}
EMOJI = "\U0001f600"  # 4 UTF-8 bytes


async def one_result(harness: WorkerHarness, queue: str | None = None) -> aio_pika.IncomingMessage:
    """The one result of the event, after time for a redelivery loop to show."""
    queue = harness.expect_results(queue or harness.settings.results_queue)
    [message] = await harness.collect(queue, 1)
    await asyncio.sleep(0.5)
    assert await harness.depth(queue) == 0, "a second result"
    return message  # type: ignore[return-value]


def sha(value: str) -> str:
    return f"sha256:{hashlib.sha256(value.encode()).hexdigest()}"


@pytest.mark.parametrize(
    ("event_id", "message_id"),
    [
        ("a" * 248, "a" * 248 + ".result"),  # 255 bytes: fits as it is
        ("a" * 249, sha("a" * 249) + ".result"),
        ("é" * 256, sha("é" * 256) + ".result"),
        (EMOJI * 256, sha(EMOJI * 256) + ".result"),  # 1,024 bytes, the longest allowed
    ],
)
async def test_the_longest_event_ids_are_answered_once_with_one_call(
    harness: WorkerHarness, event_id: str, message_id: str
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    await harness.publish(step_event(event_id, "notify", params={"id": "x"}))
    message = await one_result(harness)
    result = orjson.loads(message.body)
    assert (result["event_id"], result["status"]) == (event_id, "success")
    assert message.message_id == message_id
    assert message.correlation_id is not None
    assert len(message.correlation_id.encode()) <= 255
    [call] = harness.api.received
    assert call.headers["Idempotency-Key"] == event_id  # sent as UTF-8


async def test_a_long_event_id_that_fails_is_dead_lettered_once(harness: WorkerHarness) -> None:
    harness.action(NOTIFY)
    harness.api.default.status = 400
    await harness.start_worker()
    event_id = EMOJI * 256
    await harness.publish(step_event(event_id, "notify", params={"id": "x"}))
    result = orjson.loads((await one_result(harness)).body)
    assert result["status_code"] == "http_400"
    [dead] = await harness.dead_letters(1)
    assert orjson.loads(dead.body)["event_id"] == event_id
    assert len(harness.api.received) == 1


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (step_event("a" * 257, "notify"), "event_id: String should have at most 256 characters"),
        (step_event(EMOJI * 257, "notify"), "event_id: String should have at most 256"),
        (step_event("a\r\nX-Injected: 1", "notify"), "event_id: String should match pattern"),
        (step_event("e-1", "é" * 257), "action: String should have at most 256 characters"),
        (step_event("e-1", "notify", deadline=1764244800), "deadline: must be an RFC 3339"),
        (step_event("e-1", "notify", deadline="2026-12-31T23:59:60Z"), "deadline: must be an RFC"),
    ],
)
async def test_one_past_a_limit_is_invalid_without_a_call(
    harness: WorkerHarness, event: dict[str, Any], problem: str
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    await harness.publish(event, message_id="m-1")
    message = await one_result(harness)
    result = orjson.loads(message.body)
    assert (result["status"], result["error"]["type"]) == ("invalid", "invalid_event")
    assert problem in result["error"]["message"]
    assert message.correlation_id == "m-1"
    [dead] = await harness.dead_letters(1)
    assert dead.headers["x-actionrelay-error-type"] == "invalid_event"
    assert harness.api.received == []


async def test_the_longest_multibyte_action_name_is_an_unknown_action(
    harness: WorkerHarness,
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    await harness.publish(step_event("e-1", EMOJI * 256, params={"id": "x"}))
    result = orjson.loads((await one_result(harness)).body)
    assert (result["status"], result["error"]["type"]) == ("invalid", "unknown_action")
    [dead] = await harness.dead_letters(1)
    assert dead.headers["x-actionrelay-action"] == EMOJI * 256


async def test_amqp_properties_at_255_bytes_are_echoed(harness: WorkerHarness) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    longest = "é" * 127 + "a"  # 255 bytes
    # pamqp allows ASCII queue names only, so the longest reply_to declared here is ASCII.
    reply_to = await harness.channel.declare_queue(
        f"r.{harness.settings.request_queue}".ljust(255, "r"), exclusive=True, auto_delete=True
    )
    await harness.publish(
        step_event("e-1", "notify", params={"id": "x"}),
        reply_to=reply_to.name,
        correlation_id=longest,
        message_id=longest,
    )
    message = await one_result(harness, reply_to.name)
    assert message.correlation_id == longest
    assert orjson.loads(message.body)["status"] == "success"


def headers_of(size: int) -> dict[str, Any]:
    """Application headers that encode to exactly ``size`` bytes: the table's 4-byte
    length, then a key of length 1 (1 + 1 bytes), its type (1) and 4-byte length."""
    return {"k": "v" * (size - 4 - 2 - 1 - 4)}


async def test_headers_up_to_64_kib_are_accepted_and_one_byte_more_is_invalid(
    harness: WorkerHarness,
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    await harness.publish(
        step_event("fits", "notify", params={"id": "x"}), headers=headers_of(MAX_HEADERS_BYTES)
    )
    fits = orjson.loads((await one_result(harness)).body)
    assert fits["status"] == "success"
    await harness.publish(
        step_event("over", "notify", params={"id": "x"}), headers=headers_of(MAX_HEADERS_BYTES + 1)
    )
    over = orjson.loads((await one_result(harness)).body)
    assert over["status"] == "invalid"
    assert "the limit is 65,536 bytes" in over["error"]["message"]
    [dead] = await harness.dead_letters(1)
    assert dead.headers["x-actionrelay-error-type"] == "invalid_event"
    assert len(harness.api.received) == 1


def body_of(size: int, event_id: str) -> bytes:
    """A step event of exactly ``size`` bytes, padded in a param the action ignores."""
    bare = orjson.dumps(step_event(event_id, "notify", params={"id": "x", "pad": ""}))
    padded = step_event(event_id, "notify", params={"id": "x", "pad": "p" * (size - len(bare))})
    body = orjson.dumps(padded)
    assert len(body) == size
    return body


async def test_a_body_of_1_mib_is_accepted_and_one_byte_more_is_invalid(
    harness: WorkerHarness,
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    await harness.publish(body_of(MAX_EVENT_BYTES, "fits"))
    assert orjson.loads((await one_result(harness)).body)["status"] == "success"
    await harness.publish(body_of(MAX_EVENT_BYTES + 1, "over"))
    over = orjson.loads((await one_result(harness)).body)
    assert (over["event_id"], over["status"]) == ("over", "invalid")
    assert "the limit is 1,048,576 bytes" in over["error"]["message"]
    assert len(harness.api.received) == 1


def nested(depth: int, event_id: str) -> bytes:
    """An event whose body nests arrays and objects ``depth`` levels in all."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)  # the body and params are two levels
    params = f'{{"id": "x", "deep": {inner}}}'
    return f'{{"event_id": "{event_id}", "action": "notify", "params": {params}}}'.encode()


async def test_nesting_of_1024_levels_is_accepted_and_1025_is_invalid(
    harness: WorkerHarness,
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    await harness.publish(nested(1024, "fits"))
    assert orjson.loads((await one_result(harness)).body)["status"] == "success"
    await harness.publish(nested(1025, "over"))
    over = orjson.loads((await one_result(harness)).body)
    assert over["status"] == "invalid"
    assert "depth limit exceeded" in over["error"]["message"]
    assert len(harness.api.received) == 1


async def test_a_long_multibyte_profile_id_and_journey_come_back_as_sent(
    harness: WorkerHarness,
) -> None:
    harness.action(NOTIFY)
    await harness.start_worker()
    journey = {"id": EMOJI * 1000, "step_id": "é" * 1000}
    event = step_event("e-1", "notify", params={"id": "x"}, profile_id=EMOJI * 5000)
    await harness.publish(event | {"journey": journey})
    result = orjson.loads((await one_result(harness)).body)
    assert (result["profile_id"], result["journey"]) == (EMOJI * 5000, journey)


async def test_a_result_rabbitmq_will_not_take_is_dead_lettered_once_without_a_second_call(
    harness: WorkerHarness,
) -> None:
    """The reply queue and the results exchange both refuse it (full queues that
    reject publishes): one call, one dead letter saying why, and no redelivery loop."""
    harness.action(NOTIFY)
    await harness.declare()
    full: dict[str, Any] = {"x-max-length": 0, "x-overflow": "reject-publish"}
    reply = await harness.channel.declare_queue(exclusive=True, arguments=full)
    blocker = await harness.channel.declare_queue(exclusive=True, arguments=full)
    await blocker.bind(harness.settings.results_exchange, routing_key="#")
    worker = await harness.start_worker()
    await harness.publish(step_event("e-1", "notify", params={"id": "x"}), reply_to=reply.name)
    [dead] = await harness.dead_letters(1)
    assert dead.headers["x-actionrelay-error-type"] == "result_unpublishable"
    message = str(dead.headers["x-actionrelay-error-message"])
    assert "the success result (status_code http_200) could not be published" in message
    assert "RabbitMQ nacked it" in message
    await asyncio.sleep(1.0)
    assert len(harness.api.received) == 1
    assert await harness.depth(harness.settings.request_queue) == 0
    metrics = worker.metrics.registry
    assert (
        metrics.get_sample_value("actionrelay_results_unpublishable_total", {"action": "notify"})
        == 1
    )
