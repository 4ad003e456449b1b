"""What actionrelay declares on RabbitMQ, and the names and arguments of it all.

``Topology`` declares the request, dead-letter, results and holding queues,
the results exchange and the delay ladder (``core/delay.py``) once, and
remembers them; aio-pika's robust channel declares them again on a reconnect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from actionrelay.core.delay import LEVELS, DelayLadder
from actionrelay.core.errors import ConfigError
from actionrelay.core.event import ActionResult
from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.settings import Settings

ROUTABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
HELD_SINCE = "x-actionrelay-held-since"
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000


@dataclass
class Topology:
    """Declares the worker's queues and exchanges once and remembers them."""

    settings: Settings
    queues: dict[str, AbstractQueue] = field(default_factory=dict)
    exchanges: dict[str, AbstractExchange] = field(default_factory=dict)

    @property
    def ladder(self) -> DelayLadder:
        return DelayLadder(self.settings.delay_prefix)

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
        problem = self.ladder.check_destination(s.request_queue)
        if problem is not None:
            raise ConfigError(f"ACTIONRELAY_REQUEST_QUEUE: {problem}; choose another name")
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
        results_queue = await self._declare_keeping_type(channel, s.results_queue)
        await results_queue.bind(results, routing_key="#")
        self.queues[s.results_queue] = results_queue
        await self.declare_ladder(channel)
        await self._bind_to_ladder()

    async def _declare_keeping_type(self, channel: AbstractChannel, name: str) -> AbstractQueue:
        """A queue of ``queue_type`` when missing; an existing one of another type is kept.

        The results queue was a classic queue before it followed ``queue_type``:
        such a queue is used as it is rather than refused (docs/operations.md
        says how to move it to a quorum queue).
        """
        wanted: dict[str, Any] = {"x-queue-type": self.settings.queue_type}
        underlay = await channel.get_underlay_channel()
        probe = await underlay.connection.channel()
        try:
            await probe.queue_declare(name, durable=True, arguments=wanted)
        except aiormq.exceptions.ChannelPreconditionFailed:
            wanted = {}  # as older versions declared it
        finally:
            if not probe.is_closed:
                await probe.close()
        return await channel.declare_queue(name, durable=True, arguments=wanted)

    async def declare_ladder(self, channel: AbstractChannel) -> None:
        """The delay ladder (``core/delay.py``), shared by every request queue of the vhost."""
        ladder = self.ladder
        exchanges = {}
        for name in [ladder.deliver, *(ladder.level_name(k) for k in range(LEVELS))]:
            exchanges[name] = await channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        for level in range(LEVELS):
            name = ladder.level_name(level)
            self.queues[name] = await channel.declare_queue(
                name, durable=True, arguments=ladder.queue_arguments(level)
            )
        for binding in ladder.bindings():
            if binding.kind == "queue":
                await self.queues[binding.destination].bind(binding.source, binding.pattern)
            else:
                await exchanges[binding.destination].bind(binding.source, binding.pattern)

    async def _bind_to_ladder(self) -> None:
        """The request queue's way out of the ladder."""
        name = self.settings.request_queue
        await self.queues[name].bind(self.ladder.deliver, self.ladder.destination_pattern(name))


def result_routing_key(result: ActionResult) -> str:
    action = result.action if result.action and ROUTABLE_NAME.match(result.action) else "unknown"
    return f"{action}.{result.status}"
