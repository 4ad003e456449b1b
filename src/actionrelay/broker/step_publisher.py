"""``actionrelay publish``: send a step event as the journey engine does; maybe await its result.

With a wait, the event carries ``reply_to`` (an exclusive, server-named queue of
this connection) and ``correlation_id`` = the event id; the worker answers
there. When the wait ends first, the queue goes away with the connection and
the worker's result falls back to the results exchange, so it is not lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from actionrelay.broker.broker import BrokerUnavailable
from actionrelay.broker.connection import CONNECTION_ERRORS, connect_once
from actionrelay.core.errors import ActionRelayError
from actionrelay.core.event import amqp_id
from actionrelay.settings import split_urls


class NotDelivered(ActionRelayError):
    """The broker did not take the step event (no such queue, or the queue refused it)."""


class NoResultYet(ActionRelayError):
    """No result arrived within the wait."""


def step_event(
    action: str, params: dict[str, Any], *, event_id: str, profile_id: str | None
) -> dict[str, Any]:
    """The event the journey engine would publish for a step of a CLI "journey"."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "action": action,
        "journey": {"id": "actionrelay-cli", "step_id": "publish"},
        "params": params,
    }
    if profile_id is not None:
        event["profile_id"] = profile_id
    return event


async def publish_step(
    amqp_url: str,
    queue: str,
    event: dict[str, Any],
    *,
    wait_seconds: float | None,
    on_published: Callable[[], None] = lambda: None,
) -> dict[str, Any] | None:
    """Publish ``event`` to ``queue`` (confirmed); with ``wait_seconds``, return its result."""
    try:
        connection = await connect_once(
            split_urls(amqp_url), client_properties={"connection_name": "actionrelay publish"}
        )
        async with connection:
            return await _publish(connection, queue, event, wait_seconds, on_published)
    except CONNECTION_ERRORS as exc:
        raise BrokerUnavailable(f"RabbitMQ: {exc}") from exc


async def _publish(
    connection: AbstractConnection,
    queue: str,
    event: dict[str, Any],
    wait_seconds: float | None,
    on_published: Callable[[], None],
) -> dict[str, Any] | None:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    replies: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    reply_to = None
    if wait_seconds is not None:
        reply_queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await reply_queue.consume(replies.put, no_ack=True)
        reply_to = reply_queue.name
    await send_confirmed(channel, queue, event, reply_to=reply_to)
    on_published()
    if wait_seconds is None:
        return None
    return await _await_result(replies, event["event_id"], wait_seconds)


def step_message(event: dict[str, Any], *, reply_to: str | None = None) -> aio_pika.Message:
    """A step event as a publisher must send it: persistent JSON, ids that fit AMQP."""
    event_id = amqp_id(str(event["event_id"]))
    return aio_pika.Message(
        body=orjson.dumps(event),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id,
        correlation_id=event_id,
        reply_to=reply_to,
    )


async def send_confirmed(
    channel: AbstractChannel, queue: str, event: dict[str, Any], *, reply_to: str | None = None
) -> None:
    """Publish ``event`` (mandatory) and wait for the confirm; NotDelivered when refused.

    ``channel`` must have publisher confirms (aio-pika's default).
    """
    message = step_message(event, reply_to=reply_to)
    try:
        await channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
    except aiormq.exceptions.DeliveryError as exc:
        raise NotDelivered(
            f"RabbitMQ did not take the event on {queue!r}: is the queue there "
            f"(a worker declares it on start) and not full? ({exc})"
        ) from exc


async def _await_result(
    replies: asyncio.Queue[AbstractIncomingMessage], event_id: str, wait_seconds: float
) -> dict[str, Any]:
    try:
        async with asyncio.timeout(wait_seconds):
            while True:
                reply = await replies.get()
                if reply.correlation_id == event_id:
                    result: dict[str, Any] = orjson.loads(reply.body)
                    return result
    except TimeoutError:
        raise NoResultYet(
            f"no result for {event_id} within {wait_seconds:g} s; the event may still be "
            "retrying: its result will go to the results exchange"
        ) from None
