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
from dataclasses import dataclass
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

MAX_PREFETCH = 65535  # AMQP's prefetch-count is 16 bits, and 0 is no limit
# How long a scan waits for messages the queue says are ready before it calls the
# read partial.
MAX_SILENCE_SECONDS = 120.0
RETURN_POLLS, RETURN_POLL_SECONDS = 200, 0.05
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
    """Hands out the queue's messages in order, up to ``depth``, and never acks them itself.

    AMQP caps a consumer's prefetch at 65,535 (prefetch 0, "no limit", gets a quorum
    queue's 2,000), so a deeper queue is read by a chain of consumers: the next one
    starts only once the current one holds its whole prefetch, unacked, and has
    been cancelled. At no moment do two consumers have credit, so the queue hands
    out its messages in order. Acks go through ``ack`` and ``ack_read`` so that the
    scan knows when a consumer is full.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        depth: int,
        idle_seconds: float,
        max_prefetch: int = MAX_PREFETCH,
    ) -> None:
        self.channel = channel
        self.depth = depth
        self.taken = 0
        self.max_delivery_count = 0
        self.stalled = False
        self._queue = queue
        self._idle = idle_seconds
        self._max_prefetch = max_prefetch
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._consumer: _Consumer | None = None
        self._unacked_read: dict[str | None, int] = {}
        self._consumers = 0
        self.delivered = 0
        self.acked = 0

    @property
    def unacked(self) -> int:
        """Messages delivered to this scan and not acked: what closing gives back."""
        return self.delivered - self.acked

    async def receive(self, message: AbstractIncomingMessage) -> None:
        self.delivered += 1
        if self._consumer is not None and message.consumer_tag == self._consumer.tag:
            self._consumer.delivered += 1
        self._buffer.put_nowait(message)

    async def next(self) -> Held | None:
        """The next held message; None at the starting depth, or when the rest is held
        by another consumer (``stalled``)."""
        if self.taken >= self.depth:
            return None
        if self._buffer.empty() and self._consumer_full():
            await self._next_consumer()
        message = await self._wait()
        if message is None:
            self.stalled = True
            return None
        self.taken += 1
        tag = message.consumer_tag
        self._unacked_read[tag] = self._unacked_read.get(tag, 0) + 1
        letter = dead_letter_of(self.taken - 1, message)
        self.max_delivery_count = max(self.max_delivery_count, letter.delivery_count or 0)
        return message, letter

    async def _wait(self) -> AbstractIncomingMessage | None:
        """The next delivery. Silence means another consumer holds the rest only when
        the queue has nothing ready: a quorum queue that has just taken back a large
        scan's messages can be silent for many seconds with all of them ready."""
        waited = 0.0
        while True:
            try:
                return await asyncio.wait_for(self._buffer.get(), self._idle)
            except TimeoutError:
                waited += self._idle
            ready = await self._ready()
            if not ready or waited >= MAX_SILENCE_SECONDS:
                return None

    async def _ready(self) -> int:
        return await ready_count(self.channel, self._queue.name)

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """Acknowledge one message handed out by ``next``."""
        await guarded(message.ack())
        self._settled(message.consumer_tag, 1)

    async def ack_read(self, last: AbstractIncomingMessage) -> None:
        """Acknowledge every message read so far with one ``multiple`` ack (through
        ``last``, the latest read); only when every one of them is to go."""
        await guarded(last.ack(multiple=True))
        for tag, count in list(self._unacked_read.items()):
            self._settled(tag, count)

    async def start(self) -> None:
        if self.depth:
            await self._next_consumer()

    async def stop(self) -> None:
        """Cancel the consumer: a round trip through the queue, after every ack sent before.

        A quorum queue could otherwise still be holding acks back when the channel
        closes, and return those messages too.
        """
        if self._consumer is not None:
            await guarded(self._queue.cancel(self._consumer.tag))
            self._consumer = None

    def _settled(self, tag: str | None, count: int) -> None:
        self.acked += count
        self._unacked_read[tag] = self._unacked_read.get(tag, 0) - count
        if self._consumer is not None and tag == self._consumer.tag:
            self._consumer.acked += count

    def _consumer_full(self) -> bool:
        consumer = self._consumer
        return consumer is not None and consumer.delivered - consumer.acked >= consumer.prefetch

    async def _next_consumer(self) -> None:
        # The current consumer is full: no delivery to it is on its way, and once it
        # is cancelled none will come, even after an ack.
        await self.stop()
        prefetch = min(self._max_prefetch, self.depth - self.taken)
        await guarded(self.channel.set_qos(prefetch_count=prefetch))
        # Tags that sort in the order of the consumers: RabbitMQ gives a closed
        # channel's messages back consumer by consumer, in the order of their tags.
        tag = f"actionrelay-scan-{self._consumers:06d}"
        self._consumers += 1
        self._consumer = _Consumer(tag, prefetch)
        await guarded(self._queue.consume(self.receive, no_ack=False, consumer_tag=tag))


@dataclass
class _Consumer:
    tag: str
    prefetch: int
    delivered: int = 0
    acked: int = 0


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
    connection: AbstractConnection,
    queue_name: str,
    idle_seconds: float,
    max_prefetch: int = MAX_PREFETCH,
) -> AsyncIterator[HeldScan]:
    """A scan of ``queue_name`` whose messages all go back when it ends, unless acked."""
    async with confirming_channel(connection) as channel:
        queue, depth = await declared(channel, queue_name)
        scan = HeldScan(channel, queue, depth, idle_seconds, max_prefetch)
        await scan.start()
        yield scan
        await scan.stop()
        expected = await ready_count(channel, queue_name) + scan.unacked
    await returned(connection, queue_name, expected)


async def returned(connection: AbstractConnection, queue_name: str, expected: int) -> None:
    """Wait (a little) until the queue shows the messages a closed scan gave back.

    A quorum queue takes them back after the channel is gone, a moment later: a
    command run right after this one must find them ready. Other consumers can
    keep the count from ever getting there, hence the bound.
    """
    async with confirming_channel(connection) as channel:
        for _ in range(RETURN_POLLS):
            if await ready_count(channel, queue_name) >= expected:
                return
            await asyncio.sleep(RETURN_POLL_SECONDS)


async def ready_count(channel: AbstractChannel, queue_name: str) -> int:
    result = await guarded(channel.declare_queue(queue_name, passive=True))
    return result.declaration_result.message_count or 0


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
