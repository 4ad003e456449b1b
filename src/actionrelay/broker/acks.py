"""Acknowledging many deliveries with few frames, without weakening at-least-once.

A delivery is acked only after the worker has settled it (its result, retry
copy or dead letter confirmed). Settled deliveries whose every predecessor on
the channel is settled too are acked together with one ``multiple`` ack at
the next flush (a few milliseconds later); a settled delivery stuck behind a
slow predecessor for longer than ``straggler_seconds`` is acked on its own, so
a slow call never holds the acks of fast ones for long. A crash can therefore
redeliver at most what settled in the last flush window: the same kind of
duplicate as a crash between a confirm and an ack, documented in
docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import structlog
from aiormq.abc import AbstractChannel

from actionrelay.broker.connection import CONNECTION_ERRORS

log = structlog.get_logger("actionrelay.acks")


class AckBatcher:
    def __init__(
        self,
        channel: AbstractChannel,
        *,
        flush_seconds: float = 0.002,
        straggler_seconds: float = 0.05,
    ) -> None:
        self._channel = channel
        self._flush_seconds = flush_seconds
        self._straggler_seconds = straggler_seconds
        self._order: deque[int] = deque()  # delivered, in delivery-tag order
        self._settled: dict[int, float] = {}  # tag -> when settled, not yet acked
        self._acked_alone: set[int] = set()
        self._flushing: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending = asyncio.Lock()

    @property
    def closed(self) -> bool:
        return self._channel.is_closed

    def delivered(self, tag: int) -> None:
        self._order.append(tag)

    def settle(self, tag: int) -> None:
        """Ack ``tag`` soon; call only once its outcome is confirmed by the broker."""
        self._settled[tag] = time.monotonic()
        if self._flushing is None:
            loop = asyncio.get_running_loop()
            self._flushing = loop.call_later(self._flush_seconds, self._flush)

    def forget(self, tag: int) -> None:
        """``tag`` was settled another way (nacked); it no longer holds up the others."""
        self._acked_alone.add(tag)
        if self._flushing is None:
            loop = asyncio.get_running_loop()
            self._flushing = loop.call_later(self._flush_seconds, self._flush)

    def _advance(self) -> int | None:
        """Drop the settled prefix; returns the highest tag a multiple ack may name.

        Only a tag still outstanding may be named: RabbitMQ closes the channel on
        a multiple ack whose own tag was already acked or nacked.
        """
        highest = None
        while self._order and (
            self._order[0] in self._settled or self._order[0] in self._acked_alone
        ):
            tag = self._order.popleft()
            if self._settled.pop(tag, None) is not None:
                highest = tag
            self._acked_alone.discard(tag)
        return highest

    def _flush(self) -> None:
        self._flushing = None
        highest = self._advance()
        now = time.monotonic()
        # _settled is in settling order, so the stragglers are its oldest entries.
        stragglers = []
        for tag, at in self._settled.items():
            if now - at < self._straggler_seconds:
                break
            stragglers.append(tag)
        for tag in stragglers:
            del self._settled[tag]
            self._acked_alone.add(tag)
        frames = [(highest, True)] if highest is not None else []
        frames += [(tag, False) for tag in stragglers]
        if frames:
            task = asyncio.ensure_future(self._ack(frames))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._settled:
            loop = asyncio.get_running_loop()
            self._flushing = loop.call_later(self._flush_seconds, self._flush)

    async def _ack(self, frames: list[tuple[int, bool]]) -> None:
        # One flush at a time, in order: a multiple ack overtaking an earlier single
        # ack of a tag it covers would make that single ack name an unknown tag.
        # Only the last frame waits until it is written: the write queue is in order,
        # so every earlier one is with the transport by then (drain() relies on that).
        last = len(frames)
        async with self._sending:
            for n, (tag, multiple) in enumerate(frames, 1):
                if self._channel.is_closed:
                    return  # the deliveries died with the channel; RabbitMQ redelivers them
                try:
                    await self._channel.basic_ack(tag, multiple=multiple, wait=n == last)
                except CONNECTION_ERRORS as exc:  # the channel went away: redelivery covers it
                    log.warning("acks.lost_channel", delivery_tag=tag, error=str(exc))
                    return

    async def drain(self) -> None:
        """Send every pending ack now (graceful shutdown)."""
        if self._flushing is not None:
            self._flushing.cancel()
        self._straggler_seconds = 0.0
        self._flush()
        if self._tasks:
            await asyncio.wait(self._tasks)
