"""A step event as the worker receives it: aiormq's delivery, read in place.

aio-pika hands a consumer each delivery as an ``IncomingMessage``: a full
``Message`` built field by field (every write through a ``__setattr__`` that
checks a lock), run in a second task next to the one aiormq already made for
it. The worker reads a few fields and acks through its ``AckBatcher``, so its
queues (``WorkerQueue``, made by the worker's channels) give the callback a
``Delivery`` instead: the same fields, read from the frame aiormq decoded, in
aiormq's task. One task and one small object per event, in CPU and in memory
(docs/performance.md). Reconnects are aio-pika's: a ``WorkerQueue`` registers
its consumers where ``RobustQueue`` restores them after a reconnect. A
consumer that RabbitMQ cancels while the channel stays open (its queue was
deleted) is brought back by aio-pika's own ``Queue.consume``, which hands the
worker ``IncomingMessage``s again until the next reconnect: both are
``Incoming``, so only the saving is lost
(tests/integration/broker/test_resilience.py).

``Incoming`` is what the rest of actionrelay reads from a received message;
a ``Delivery`` and aio-pika's ``IncomingMessage`` (the dlq tools read with
plain aio-pika) both have it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

import aio_pika
import aiormq
from aio_pika.abc import ConsumerTag, HeadersType
from aiormq.abc import DeliveredMessage
from pamqp.common import Arguments


class Incoming(Protocol):
    """The fields and settlements actionrelay uses from a received message."""

    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> HeadersType: ...
    @property
    def delivery_tag(self) -> int | None: ...
    @property
    def consumer_tag(self) -> str | None: ...
    @property
    def redelivered(self) -> bool | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def reply_to(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def content_encoding(self) -> str | None: ...
    @property
    def priority(self) -> int | None: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def app_id(self) -> str | None: ...
    @property
    def channel(self) -> aiormq.abc.AbstractChannel: ...
    def ack(self, multiple: bool = False) -> Awaitable[None]: ...
    def nack(self, multiple: bool = False, requeue: bool = True) -> Awaitable[None]: ...


class Delivery:
    """One delivery from RabbitMQ: its body, properties and delivery fields, and its settlements."""

    __slots__ = ("_message", "body", "consumer_tag", "delivery_tag", "headers", "redelivered")

    def __init__(self, message: DeliveredMessage) -> None:
        self._message = message
        self.body: bytes = message.body
        self.headers: HeadersType = message.header.properties.headers or {}
        self.delivery_tag: int | None = message.delivery_tag
        self.consumer_tag: str | None = message.consumer_tag
        self.redelivered: bool | None = message.redelivered

    def __repr__(self) -> str:
        return f"<Delivery tag={self.delivery_tag} message_id={self.message_id!r}>"

    # An empty string reads as None, as aio-pika reads it.
    @property
    def correlation_id(self) -> str | None:
        return self._message.header.properties.correlation_id or None

    @property
    def reply_to(self) -> str | None:
        return self._message.header.properties.reply_to or None

    @property
    def message_id(self) -> str | None:
        return self._message.header.properties.message_id or None

    @property
    def content_type(self) -> str | None:
        return self._message.header.properties.content_type

    @property
    def content_encoding(self) -> str | None:
        return self._message.header.properties.content_encoding

    @property
    def priority(self) -> int:
        return self._message.header.properties.priority or 0  # as aio-pika reads it

    @property
    def timestamp(self) -> datetime | None:
        return self._message.header.properties.timestamp

    @property
    def type(self) -> str | None:
        return self._message.header.properties.message_type or None

    @property
    def app_id(self) -> str | None:
        return self._message.header.properties.app_id or None

    @property
    def channel(self) -> aiormq.abc.AbstractChannel:
        """The channel it came on; raises, as aio-pika does, once that channel is closed."""
        channel = self._message.channel
        if channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} is closed")
        return channel

    async def ack(self, multiple: bool = False) -> None:
        await self.channel.basic_ack(self._tag(), multiple=multiple)

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        await self.channel.basic_nack(self._tag(), multiple=multiple, requeue=requeue)

    def _tag(self) -> int:
        if self.delivery_tag is None:  # only a basic.get-empty has none; a consumer never
            raise RuntimeError(f"{self!r} has no delivery tag to settle")
        return self.delivery_tag


async def _deliver(
    callback: Callable[[Delivery], Awaitable[Any]], message: DeliveredMessage
) -> None:
    await callback(Delivery(message))


class WorkerQueue(aio_pika.RobustQueue):
    """A robust queue whose consumers get a ``Delivery``, in aiormq's task."""

    async def consume(  # type: ignore[override]  # the callback takes a Delivery
        self,
        callback: Callable[[Delivery], Awaitable[Any]],
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: Arguments = None,
        consumer_tag: ConsumerTag | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - RobustQueue.consume's signature
        robust: bool = True,
    ) -> ConsumerTag:
        if no_ack:  # the worker settles every delivery itself, after its outcome is confirmed
            raise ValueError(f"{self.name}: a WorkerQueue consumes with acks, not no_ack")
        channel = await self.channel.get_underlay_channel()
        answer = await channel.basic_consume(
            queue=self.name,
            consumer_callback=partial(_deliver, callback),
            exclusive=exclusive,
            no_ack=no_ack,
            arguments=arguments,
            consumer_tag=consumer_tag,
            timeout=timeout,
        )
        if answer.consumer_tag is None:
            raise RuntimeError(f"RabbitMQ named no consumer tag for {self.name}")
        if robust:  # where RobustQueue.restore finds it after a reconnect
            self._consumers[answer.consumer_tag] = {
                "callback": callback,
                "no_ack": no_ack,
                "exclusive": exclusive,
                "arguments": arguments,
            }
        return answer.consumer_tag
