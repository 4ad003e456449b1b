"""The RabbitMQ side: topology, consuming step events, publishing results and dead letters.

aio-pika exceptions are translated here into ``BrokerUnavailable``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    DeliveryMode,
)
from pamqp.commands import Basic

from actionrelay.connection import WorkerConnection
from actionrelay.endpoint import EndpointConfig
from actionrelay.errors import ActionRelayError, ConfigError
from actionrelay.event import ActionResult
from actionrelay.settings import Settings

log = structlog.get_logger("actionrelay.broker")
ROUTABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
DEAD_LETTER_HEADER_PREFIX = "x-actionrelay-"
HELD_SINCE = "x-actionrelay-held-since"
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000

# The exceptions that mean "the connection or channel went away"; nothing broader.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)


class BrokerUnavailable(ActionRelayError):
    """RabbitMQ could not be reached or dropped the connection."""


@dataclass
class Topology:
    """Declares the worker's queues and exchanges once and remembers them."""

    settings: Settings
    queues: dict[str, AbstractQueue] = field(default_factory=dict)
    exchanges: dict[str, AbstractExchange] = field(default_factory=dict)
    delay_queues: dict[str, float] = field(default_factory=dict)

    def delay_queue_name(self, delay_ms: int) -> str:
        return f"{self.settings.request_queue}.retry.{delay_ms}ms"

    def delay_queue_arguments(self, delay_ms: int) -> dict[str, Any]:
        """A wait room: every message expires after ``delay_ms`` back into the request queue.

        One TTL per queue keeps each queue first-in-first-out with no message
        blocking an earlier-due one. An idle delay queue deletes itself.
        """
        return {
            "x-queue-type": "classic",
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.settings.request_queue,
            "x-expires": 2 * delay_ms + 60_000,
        }

    def holding_queue_name(self, endpoint: EndpointConfig) -> str:
        return f"{self.settings.request_queue}.hold.{endpoint.key}"

    async def declare_holding_queue(
        self, channel: AbstractChannel, endpoint: EndpointConfig
    ) -> AbstractQueue:
        """Where a throttled endpoint's events wait their turn, in arrival order."""
        name = self.holding_queue_name(endpoint)
        queue = self.queues.get(name)
        if queue is None:
            queue = await channel.declare_queue(
                name, durable=True, arguments=self.request_queue_arguments()
            )
            self.queues[name] = queue
        return queue

    async def declare_delay_queue(self, channel: AbstractChannel, delay_ms: int) -> str:
        """Declared again well before it could expire, so no waiting message is lost."""
        name = self.delay_queue_name(delay_ms)
        now = time.monotonic()
        if now - self.delay_queues.get(name, -math.inf) > delay_ms / 2000 + 30:
            await channel.declare_queue(
                name, durable=True, arguments=self.delay_queue_arguments(delay_ms)
            )
            self.delay_queues[name] = now
        return name

    def request_queue_arguments(self) -> dict[str, Any]:
        s = self.settings
        args: dict[str, Any] = {
            "x-queue-type": s.queue_type,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": s.dead_letter_queue,
        }
        if s.queue_type == "quorum":
            args |= {
                "x-delivery-limit": s.delivery_limit,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        return args

    def dead_letter_queue_arguments(self) -> dict[str, Any]:
        """No effective delivery limit: inspecting dead letters must never drop one.

        RabbitMQ 4 gives quorum queues a default limit of 20 deliveries; every
        ``actionrelay dlq`` scan is a delivery.
        """
        args: dict[str, Any] = {"x-queue-type": self.settings.queue_type}
        if self.settings.queue_type == "quorum":
            args["x-delivery-limit"] = DEAD_LETTER_DELIVERY_LIMIT
        return args

    async def declare(self, channel: AbstractChannel) -> None:
        s = self.settings
        self.queues[s.dead_letter_queue] = await channel.declare_queue(
            s.dead_letter_queue, durable=True, arguments=self.dead_letter_queue_arguments()
        )
        self.queues[s.request_queue] = await channel.declare_queue(
            s.request_queue, durable=True, arguments=self.request_queue_arguments()
        )
        results = await channel.declare_exchange(
            s.results_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self.exchanges[s.results_exchange] = results
        results_queue = await channel.declare_queue(s.results_queue, durable=True)
        await results_queue.bind(results, routing_key="#")
        self.queues[s.results_queue] = results_queue


def result_routing_key(result: ActionResult) -> str:
    action = result.action if result.action and ROUTABLE_NAME.match(result.action) else "unknown"
    return f"{action}.{result.status}"


class Broker:
    """One robust connection, one confirming channel, the declared topology."""

    def __init__(self, settings: Settings, *, connection_name: str) -> None:
        self.settings = settings
        self.topology = Topology(settings)
        self._connection_name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._holding: list[tuple[AbstractChannel, AbstractQueue, str]] = []

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self.settings.amqp_url,
                client_properties={"connection_name": self._connection_name},
                connection_class=WorkerConnection,
            )
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            await self._channel.set_qos(prefetch_count=self.settings.prefetch)
            await self.topology.declare(self._channel)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            await self.close()
            raise ConfigError(
                f"RabbitMQ refused actionrelay's queues: {exc.args[0] if exc.args else exc}. "
                "A queue of that name exists with other arguments (declared by hand or by an "
                "older actionrelay): move its messages and delete it, or set the "
                "ACTIONRELAY_*_QUEUE names to new queues."
            ) from exc
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"cannot reach RabbitMQ: {exc}") from exc

    def not_ready_reason(self) -> str | None:
        """None while connected and consuming; otherwise what is missing."""
        if self._connection is None or not self._connection.connected.is_set():
            return "not connected to RabbitMQ"
        if self._channel is None or self._channel.is_closed:
            return "RabbitMQ channel is closed"
        if self._consumer_tag is None:
            return "not consuming"
        return None

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("Broker is not connected")
        return self._channel

    async def consume(self, callback: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> None:
        queue = self.topology.queues[self.settings.request_queue]
        self._consumer_tag = await queue.consume(callback)

    async def consume_holding(
        self,
        endpoint: EndpointConfig,
        callback: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        """Consume a holding queue on its own channel, a few events at a time.

        The prefetch covers about two seconds of the endpoint's rate, so the
        rest of a backlog waits in RabbitMQ, not in this process.
        """
        assert endpoint.throttling is not None
        assert self._connection is not None
        channel = await self._connection.channel()
        prefetch = max(
            1, min(self.settings.prefetch, math.ceil(endpoint.throttling.max_per_second * 2))
        )
        await channel.set_qos(prefetch_count=prefetch)
        queue = await self.topology.declare_holding_queue(channel, endpoint)
        tag = await queue.consume(callback)
        self._holding.append((channel, queue, tag))

    async def publish_holding(
        self,
        incoming: AbstractIncomingMessage,
        endpoint: EndpointConfig,
        headers: Mapping[str, Any],
    ) -> None:
        queue = await self.topology.declare_holding_queue(self.channel, endpoint)
        if HELD_SINCE in incoming.headers:
            headers = {k: v for k, v in headers.items() if k != HELD_SINCE}
        await self._publish_copy(queue.name, _copy(incoming, headers))

    async def stop_consuming(self) -> None:
        for _channel, queue, tag in self._holding:
            await queue.cancel(tag)
        self._holding.clear()
        if self._consumer_tag is None:
            return
        queue = self.topology.queues[self.settings.request_queue]
        tag, self._consumer_tag = self._consumer_tag, None
        await queue.cancel(tag)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish_result(
        self,
        result: ActionResult,
        *,
        reply_to: str | None,
        correlation_id: str | None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm.

        A ``reply_to`` queue that does not exist returns the message; the result
        then goes to the results exchange, where a bound queue always takes it.
        """
        body = result.to_json()
        properties = Basic.Properties(
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT.value,
            correlation_id=correlation_id,
            message_id=f"{result.event_id}.result" if result.event_id else None,
            message_type="actionrelay.result",
            headers=dict(headers) if headers else None,
        )
        if reply_to:
            try:
                await self._publish("", reply_to, body, properties)
            except aiormq.exceptions.PublishError:
                # Returned, no queue by that name: the result still reaches the results
                # queue. A nack is not caught: the event is requeued and tried again.
                log.info("result.reply_to_missing", reply_to=reply_to, event_id=result.event_id)
            else:
                return
        await self._publish(
            self.settings.results_exchange, result_routing_key(result), body, properties
        )

    async def _publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Basic.Properties
    ) -> None:
        """Publish on the aiormq channel and wait for the broker's confirm.

        ``wait=False``: aiormq would otherwise hold the channel's lock until the
        frame is on the socket, one publish per loop turn; the confirm is what
        matters, and it is awaited. A return raises ``PublishError``, a nack its base
        class ``DeliveryError``.
        """
        if self.channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{self.channel!r} closed")
        # The concrete channel: ``wait`` is not on aiormq's abstract one.
        amqp = cast(aiormq.Channel, await self.channel.get_underlay_channel())
        await amqp.basic_publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            properties=properties,
            mandatory=True,
            wait=False,
        )

    async def publish_retry(
        self, incoming: AbstractIncomingMessage, delay_ms: int, headers: Mapping[str, Any]
    ) -> str:
        """Park a copy of the event in the delay queue for ``delay_ms``; returns its name."""
        queue = await self.topology.declare_delay_queue(self.channel, delay_ms)
        await self._publish_copy(queue, _copy(incoming, headers))
        return queue

    async def dead_letter(
        self, incoming: AbstractIncomingMessage, metadata: Mapping[str, Any]
    ) -> None:
        """Copy the original message to the dead-letter queue with failure headers."""
        headers = {f"{DEAD_LETTER_HEADER_PREFIX}{k}": v for k, v in metadata.items()}
        await self._publish_copy(self.settings.dead_letter_queue, _copy(incoming, headers))

    async def _publish_copy(self, queue: str, message: aio_pika.Message) -> None:
        await self._publish("", queue, message.body, message.properties)


def _copy(incoming: AbstractIncomingMessage, headers: Mapping[str, Any]) -> aio_pika.Message:
    """The same event with ``headers`` added (None values removed), persistent."""
    merged = dict(incoming.headers)
    for key, value in headers.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return copy_message(incoming, merged)


def copy_message(incoming: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The original body and properties with ``headers``, persistent.

    ``expiration`` and ``user_id`` are not copied: the first could drop the copy
    unseen, the second is checked by RabbitMQ against the publishing user.
    """
    return aio_pika.Message(
        body=incoming.body,
        headers=headers,
        content_type=incoming.content_type,
        content_encoding=incoming.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=incoming.priority,
        correlation_id=incoming.correlation_id,
        reply_to=incoming.reply_to,
        message_id=incoming.message_id,
        timestamp=incoming.timestamp,
        type=incoming.type,
        app_id=incoming.app_id,
    )
