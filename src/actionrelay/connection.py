"""The worker's RabbitMQ connection: aio-pika's robust one, with aiormq's frame queues unbounded.

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
aio-pika 10.2 and aiormq 7.2); tests/integration/test_connection.py fails if
either stops being called.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika


def lift_size_limit(queue: asyncio.Queue[Any]) -> None:
    """Let ``queue`` take any number of items (a task already waiting to put still
    waits for the next ``get``; the hooks below run before anything is put)."""
    # asyncio has no public setter; Queue.put and Queue.full read this attribute.
    queue._maxsize = 0  # type: ignore[attr-defined]


class WorkerChannel(aio_pika.RobustChannel):
    """A channel whose inbound frame queue is unbounded, also once reopened."""

    async def _on_open(self) -> None:
        # Before aio-pika restores the consumers: the first deliveries find it unbounded.
        lift_size_limit((await self.get_underlay_channel()).frames)
        await super()._on_open()


class WorkerConnection(aio_pika.RobustConnection):
    """A connection whose write queue is unbounded, also after a reconnect."""

    CHANNEL_CLASS = WorkerChannel

    async def _on_connected(self) -> None:
        # A reconnect brings a new aiormq connection; its channels are restored after this.
        assert self.transport is not None
        lift_size_limit(self.transport.connection.write_queue)
        await super()._on_connected()
