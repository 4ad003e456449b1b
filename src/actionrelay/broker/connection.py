"""The worker's RabbitMQ connection: aio-pika's robust one, moving between the
brokers of a cluster, with aiormq's frame queues unbounded.

Failover: ``ACTIONRELAY_AMQP_URL`` may list several URLs, comma-separated (the
nodes of a cluster). A replica starts at a random one and, whenever it must
connect again, tries the next, so replicas spread over the nodes and move off
a node that is gone. Quorum queues are reachable from every node, so which
node a replica is connected to does not matter.

aiormq hands frames between its tasks through queues of ten: the connection's
write queue (every publish and ack) and each channel's inbound queue (every
delivery, content frame and confirm). Once such a queue is full, the task that
fills it waits for the task that empties it, which runs once per event-loop
turn. A publisher waiting there still holds its channel's lock, so every other
publisher queues behind it. In a busy worker, a thousand calls open, a loop
turn takes milliseconds: publishes, deliveries and confirms then moved a few per
turn, and an event spent 1.2 s of its 1.4 s waiting to publish its result
(docs/performance.md, scenario 2).

Unbounded, the queues hold no more than the prefetch lets in: deliveries are
bounded by the prefetch of the request queue and of each holding queue, and a
delivery has at most one publish awaiting its confirm and one ack at a time.

The hooks are aio-pika's own (``_on_connected``, ``_on_open``; checked against
aio-pika 10.2 and aiormq 7.2); tests/integration/broker/test_connection.py fails if
either stops being called.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection
from yarl import URL

from actionrelay.broker.delivery import WorkerQueue

RECONNECT_INTERVAL_SECONDS = 1.0

# The exceptions that mean "the connection or channel went away"; nothing broader.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)


def failover_order(urls: Sequence[str], rng: random.Random | None = None) -> list[str]:
    """The URLs from a random one on, wrapping around: replicas spread over the nodes."""
    start = (rng or random).randrange(len(urls))
    return [*urls[start:], *urls[:start]]


def lift_size_limit(queue: asyncio.Queue[Any]) -> None:
    """Let ``queue`` take any number of items (a task already waiting to put still
    waits for the next ``get``; the hooks below run before anything is put)."""
    # asyncio has no public setter; Queue.put and Queue.full read this attribute.
    queue._maxsize = 0  # type: ignore[attr-defined]


class WorkerChannel(aio_pika.RobustChannel):
    """A channel whose inbound frame queue is unbounded, also once reopened.

    Its queues hand their consumers a ``Delivery`` (broker/delivery.py).
    """

    QUEUE_CLASS = WorkerQueue

    async def _on_open(self) -> None:
        # Before aio-pika restores the consumers: the first deliveries find it unbounded.
        lift_size_limit((await self.get_underlay_channel()).frames)
        await super()._on_open()


class WorkerConnection(aio_pika.RobustConnection):
    """A connection that tries the next URL on every reconnect and whose write
    queue is unbounded, also after a reconnect."""

    CHANNEL_CLASS = WorkerChannel

    def __init__(self, urls: Sequence[str], **kwargs: Any) -> None:
        self.urls = [URL(url) for url in urls]
        self._attempts = 0
        query = self.urls[0].query
        if "reconnect_interval" not in query:
            kwargs.setdefault("reconnect_interval", RECONNECT_INTERVAL_SECONDS)
        super().__init__(self.urls[0], **kwargs)

    async def _RobustConnection__connect_transport(self) -> None:  # noqa: N802
        """aio-pika's one connection attempt, to the next URL in turn (its name is
        aio-pika's private method, mangled; tests/unit/broker/test_connection.py checks it)."""
        self.url = self.urls[self._attempts % len(self.urls)]
        self._attempts += 1
        await super()._RobustConnection__connect_transport()  # type: ignore[misc]

    async def _on_connected(self) -> None:
        # A reconnect brings a new aiormq connection; its channels are restored after this.
        assert self.transport is not None
        lift_size_limit(self.transport.connection.write_queue)
        await super()._on_connected()


async def connect_once(urls: Sequence[str], **kwargs: Any) -> AbstractConnection:
    """A plain connection to the first of ``urls`` that answers (for the CLI's tools)."""
    error: BaseException | None = None
    for url in urls:
        try:
            connection: AbstractConnection = await aio_pika.connect(url, **kwargs)
        except CONNECT_ERRORS as exc:
            error = exc
        else:
            return connection
    assert error is not None
    raise error
