"""The worker's RabbitMQ client: connecting, consuming step events, publishing results,
copies and dead letters.

aio-pika exceptions are translated here into ``BrokerUnavailable`` and ``Refused``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractQueue,
    AbstractRobustConnection,
    DeliveryMode,
)
from pamqp.commands import Basic

from actionrelay.broker.connection import (
    CONNECTION_ERRORS,
    WorkerConnection,
    failover_order,
)
from actionrelay.broker.copies import copy_message, copy_with
from actionrelay.broker.delivery import Delivery, Incoming, WorkerQueue
from actionrelay.broker.topology import HELD_SINCE, Topology, result_routing_key
from actionrelay.core.deadletter import DEAD_LETTER_HEADER_PREFIX
from actionrelay.core.delay import UNIT_MS
from actionrelay.core.errors import ActionRelayError, ConfigError
from actionrelay.core.event import ActionResult
from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.settings import Settings

log = structlog.get_logger("actionrelay.broker")


class BrokerUnavailable(ActionRelayError):
    """RabbitMQ could not be reached or dropped the connection."""


class Refused(ActionRelayError):
    """RabbitMQ refused a message: returned it (no queue to take it) or nacked it."""


def worker_queue(queue: AbstractQueue) -> WorkerQueue:
    """The queue as declared on the worker's channels, whose consumers get a ``Delivery``."""
    if not isinstance(queue, WorkerQueue):
        raise TypeError(f"{queue!r} was not declared on a WorkerConnection's channel")
    return queue


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
        self._holding_keys: set[str] = set()

    async def connect(self) -> None:
        """Connect to the first URL that answers (from a random one on), declare, set up."""
        try:
            self._connection = await self._connect_any(failover_order(self.settings.amqp_urls))
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            await self._channel.set_qos(prefetch_count=self.settings.prefetch)
            await self.topology.declare(self._channel)
        except ConfigError:
            await self.close()
            raise
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

    async def _connect_any(self, urls: list[str]) -> AbstractRobustConnection:
        """The first URL that answers; later reconnects go on from there."""
        error: BaseException | None = None
        for start in range(len(urls)):
            connection = WorkerConnection(
                [*urls[start:], *urls[:start]],
                client_properties={"connection_name": self._connection_name},
            )
            try:
                await connection.connect()
            except CONNECTION_ERRORS as exc:
                error = exc
                await connection.close()
            else:
                return connection
        assert error is not None
        raise error

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

    async def consume(self, callback: Callable[[Delivery], Awaitable[None]]) -> None:
        queue = worker_queue(self.topology.queues[self.settings.request_queue])
        self._consumer_tag = await queue.consume(callback)

    async def start_consuming(
        self,
        throttled: Iterable[EndpointConfig],
        on_held: Callable[[Delivery], Awaitable[None]],
        on_request: Callable[[Delivery], Awaitable[None]],
        attempts: int = 8,
    ) -> None:
        """Holding queues first, then the request queue.

        A connection lost meanwhile (a node restarting, a declaration racing
        another replica's in a cluster) is waited out while aio-pika reconnects,
        and the steps not done yet are tried again.
        """
        for attempt in range(1, attempts + 1):
            try:
                for endpoint in throttled:
                    if endpoint.key not in self._holding_keys:
                        await self.consume_holding(endpoint, on_held)
                if self._consumer_tag is None:
                    await self.consume(on_request)
            except CONNECTION_ERRORS as exc:
                if attempt == attempts:
                    raise BrokerUnavailable(f"cannot start consuming: {exc}") from exc
                delay = min(0.5 * 2**attempt, 10.0)
                log.warning("broker.consume_retry", error=str(exc), retry_in_seconds=delay)
                await asyncio.sleep(delay)
            else:
                return

    async def consume_holding(
        self,
        endpoint: EndpointConfig,
        callback: Callable[[Delivery], Awaitable[None]],
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
        queue = worker_queue(await self.topology.declare_holding_queue(channel, endpoint))
        tag = await queue.consume(callback)
        self._holding.append((channel, queue, tag))
        self._holding_keys.add(endpoint.key)

    async def publish_holding(
        self,
        incoming: Incoming,
        endpoint: EndpointConfig,
        headers: Mapping[str, Any],
    ) -> None:
        queue = await self.topology.declare_holding_queue(self.channel, endpoint)
        if HELD_SINCE in incoming.headers:
            headers = {k: v for k, v in headers.items() if k != HELD_SINCE}
        await self._publish_copy(copy_with(incoming, headers), routing_key=queue.name)

    async def stop_consuming(self) -> None:
        """Cancel every consumer; one whose channel is gone (or being reopened) has
        nothing left to stop: its deliveries went back to RabbitMQ with it."""
        consumers = [(queue, tag) for _channel, queue, tag in self._holding]
        self._holding.clear()
        self._holding_keys.clear()
        if self._consumer_tag is not None:
            consumers.append(
                (self.topology.queues[self.settings.request_queue], self._consumer_tag)
            )
            self._consumer_tag = None
        for queue, tag in consumers:
            try:
                await queue.cancel(tag)
            except CONNECTION_ERRORS as exc:
                log.info("broker.cancel_skipped", queue=queue.name, error=str(exc))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish_result(
        self,
        result: ActionResult,
        *,
        reply_to: str | None,
        correlation_id: str | None,
        message_id: str | None = None,
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
            message_id=message_id,
            message_type="actionrelay.result",
            headers=dict(headers) if headers else None,
        )
        if reply_to:
            try:
                await self._publish("", reply_to, body, properties)
            except Refused as exc:
                # No queue by that name, or it refused the result (full): the result
                # still reaches the results queue.
                log.info(
                    "result.reply_to_refused",
                    reply_to=reply_to,
                    event_id=result.event_id,
                    error=str(exc),
                )
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
        matters, and it is awaited. A return or a nack raises ``Refused``.
        """
        if self.channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{self.channel!r} closed")
        # The concrete channel: ``wait`` is not on aiormq's abstract one.
        amqp = cast(aiormq.Channel, await self.channel.get_underlay_channel())
        try:
            await amqp.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
            )
        except aiormq.exceptions.PublishError as exc:
            where = f"exchange {exchange!r}" if exchange else "the default exchange"
            raise Refused(f"no queue took it ({where}, routing key {routing_key!r})") from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise Refused(f"RabbitMQ nacked it (routing key {routing_key!r})") from exc

    async def publish_retry(
        self, incoming: Incoming, delay_seconds: float, headers: Mapping[str, Any]
    ) -> int:
        """Send a copy of the event down the delay ladder; returns the wait in ms."""
        ladder = self.topology.ladder
        units = ladder.units(delay_seconds)
        key = ladder.routing_key(units, self.settings.request_queue)
        await self._publish_copy(
            copy_with(incoming, headers), exchange=ladder.entry, routing_key=key
        )
        return units * UNIT_MS

    async def dead_letter(
        self,
        incoming: Incoming,
        metadata: Mapping[str, Any],
        *,
        keep_headers: bool = True,
    ) -> None:
        """Copy the original message to the dead-letter queue with failure headers
        (without the event's own headers when ``keep_headers`` is false)."""
        headers = {f"{DEAD_LETTER_HEADER_PREFIX}{k}": v for k, v in metadata.items()}
        copy = copy_with(incoming, headers) if keep_headers else copy_message(incoming, headers)
        await self._publish_copy(copy, routing_key=self.settings.dead_letter_queue)

    async def _publish_copy(
        self, message: aio_pika.Message, *, routing_key: str, exchange: str = ""
    ) -> None:
        await self._publish(exchange, routing_key, message.body, message.properties)
