"""The worker's RabbitMQ connection: aio-pika's robust one, with aiormq's frame queues unbounded.

aiormq hands frames between its tasks through queues of ten: the connection's
write queue (every publish and ack) and each channel's inbound queue (every
delivery, content frame and confirm). Once such a queue is full, the task that
fills it waits for the task that empties it, which runs once per event-loop
turn. A publisher waiting there still holds its channel's lock, so every other
publisher queues behind it. In a busy worker, a thousand calls open, a loop
turn takes milliseconds: publishes, deliveries and confirms then move a few per
turn, and an event spent more than a second of its 1.4 s waiting to publish its
result (docs/performance.md).

Unbounded queues keep nothing more in memory than the prefetch allows already:
deliveries are bounded by the prefetch, and each held delivery publishes at
most two messages. Without the bound, what would queue there waits in the
socket or in the held events themselves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika


def unbound(queue: asyncio.Queue[Any]) -> None:
    """Lift ``queue``'s size limit, also while tasks are waiting on it."""
    # asyncio has no public setter; Queue.put and Queue.full read this attribute.
    queue._maxsize = 0  # type: ignore[attr-defined]


class RobustChannel(aio_pika.RobustChannel):
    """A channel whose inbound frame queue is unbounded, also once reopened."""

    async def _on_open(self) -> None:
        # Before aio-pika restores the consumers: the first deliveries find it wide.
        unbound((await self.get_underlay_channel()).frames)
        await super()._on_open()


class RobustConnection(aio_pika.RobustConnection):
    """A connection whose write queue is unbounded, also after a reconnect."""

    CHANNEL_CLASS = RobustChannel

    async def _on_connected(self) -> None:
        # Before the channels are restored: their first frames find the queue wide.
        assert self.transport is not None
        unbound(self.transport.connection.write_queue)
        await super()._on_connected()
