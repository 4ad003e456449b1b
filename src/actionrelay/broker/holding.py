"""Holding a queue's messages unacked while looking at them, and giving them all back.

A ``HeldScan`` consumes with manual acks at most the messages that were ready
when it started. It never acks anything itself: whatever its user does not ack
goes back to the queue, in its place, when the channel closes, and also when
the process dies, since RabbitMQ then closes the connection. aio-pika
exceptions are translated here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from actionrelay.broker.broker import BrokerUnavailable
from actionrelay.broker.connection import CONNECTION_ERRORS
from actionrelay.core.deadletter import DeadLetter
from actionrelay.core.errors import ActionRelayError

MAX_PREFETCH = 65535  # AMQP's prefetch-count is 16 bits; above it, no limit (0)
Held = tuple[AbstractIncomingMessage, DeadLetter]


class QueueNotFound(ActionRelayError):
    """The dead-letter queue or the replay target does not exist."""


def dead_letter_of(position: int, message: AbstractIncomingMessage) -> DeadLetter:
    properties = {
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "reply_to": message.reply_to,
        "content_type": message.content_type,
        "timestamp": message.timestamp,
        "type": message.type,
        "redelivered": message.redelivered,
    }
    return DeadLetter.from_message(position, message.body, message.headers, properties)


class HeldScan:
    """Hands out the queue's messages in order, up to ``depth``, and never acks them itself."""

    def __init__(self, channel: AbstractChannel, depth: int, idle_seconds: float) -> None:
        self.channel = channel
        self.depth = depth
        self.taken = 0
        self.max_delivery_count = 0
        self.stalled = False
        self._idle = idle_seconds
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def receive(self, message: AbstractIncomingMessage) -> None:
        self._buffer.put_nowait(message)

    async def next(self) -> Held | None:
        """The next held message, or None at the starting depth or after ``idle`` silence."""
        if self.taken >= self.depth:
            return None
        try:
            message = await asyncio.wait_for(self._buffer.get(), self._idle)
        except TimeoutError:
            self.stalled = True
            return None
        self.taken += 1
        letter = dead_letter_of(self.taken - 1, message)
        self.max_delivery_count = max(self.max_delivery_count, letter.delivery_count or 0)
        return message, letter


@asynccontextmanager
async def confirming_channel(connection: AbstractConnection) -> AsyncIterator[AbstractChannel]:
    """A channel with publisher confirms; closing it requeues whatever it still holds."""
    channel = await guarded(connection.channel(publisher_confirms=True, on_return_raises=True))
    try:
        yield channel
    finally:
        # A lost connection has already given everything back.
        with contextlib.suppress(*CONNECTION_ERRORS, aiormq.exceptions.ChannelClosed):
            await channel.close()


@asynccontextmanager
async def held_scan(
    connection: AbstractConnection, queue_name: str, idle_seconds: float
) -> AsyncIterator[HeldScan]:
    """A scan of ``queue_name`` whose messages all go back when it ends, unless acked."""
    async with confirming_channel(connection) as channel:
        queue, depth = await declared(channel, queue_name)
        scan = HeldScan(channel, depth, idle_seconds)
        if not depth:
            yield scan
            return
        await guarded(channel.set_qos(prefetch_count=depth if depth <= MAX_PREFETCH else 0))
        tag = await guarded(queue.consume(scan.receive, no_ack=False))
        yield scan
        # Cancelling is a round trip through the queue: RabbitMQ has applied every
        # ack sent before it. A quorum queue can otherwise still be holding acks
        # back when the channel closes, and return those messages too.
        await guarded(queue.cancel(tag))


T = TypeVar("T")


async def guarded(awaitable: Awaitable[T]) -> T:
    """Translate "the connection went away" once, here."""
    try:
        return await awaitable
    except CONNECTION_ERRORS as exc:
        raise BrokerUnavailable(f"RabbitMQ connection lost: {exc}") from exc


async def declared(channel: AbstractChannel, name: str) -> tuple[AbstractQueue, int]:
    """The queue and its ready messages now; QueueNotFound when it does not exist."""
    try:
        queue = await guarded(channel.declare_queue(name, passive=True))
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise QueueNotFound(f"queue {name!r} does not exist on this broker") from exc
    return queue, queue.declaration_result.message_count or 0
