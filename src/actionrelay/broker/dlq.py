"""Reading, replaying and purging the dead-letter queue on a stock RabbitMQ.

Nothing only looked at is ever acked: a scan holds at most the messages that
were ready when it started, unacked, and closing its channel (or dying) gives
them all back in order. A replayed message is acked only after its copy is
confirmed, in batches of ``batch``, which bounds what a kill can duplicate.
``docs/operations.md`` tells the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from actionrelay.broker.broker import BrokerUnavailable
from actionrelay.broker.connection import CONNECTION_ERRORS, connect_once
from actionrelay.broker.copies import copy_message
from actionrelay.broker.holding import (
    MAX_PREFETCH,
    Held,
    HeldScan,
    QueueNotFound,
    confirming_channel,
    declared,
    guarded,
    held_scan,
)
from actionrelay.core.deadletter import DeadLetter, replay_headers
from actionrelay.core.triage import DeadLetterFilter
from actionrelay.settings import split_urls

PUBLISH_TIMEOUT_SECONDS = 30.0
Progress = Callable[[int, int], None]  # (scanned, depth at the start)


@dataclass
class ScanReport:
    """What one command saw: ``depth`` ready messages at the start bound the scan."""

    queue: str
    depth: int = 0
    scanned: int = 0
    matched: int = 0
    max_delivery_count: int = 0
    stalled: bool = False  # fewer than ``depth`` arrived: another consumer holds some

    @property
    def complete(self) -> bool:
        """Every message that was ready at the start was read (or the limit was reached)."""
        return not self.stalled


@dataclass
class ReplayReport(ScanReport):
    target: str = ""
    replayed: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class PurgeReport(ScanReport):
    purged: int = 0


def replay_copy(message: AbstractIncomingMessage, letter: DeadLetter) -> aio_pika.Message:
    """The original body and properties with fresh headers (``deadletter.replay_headers``)."""
    return copy_message(message, replay_headers(letter, datetime.now(UTC)))


class DeadLetterQueue:
    """One connection to RabbitMQ, used to inspect or change one dead-letter queue."""

    def __init__(
        self,
        amqp_url: str,
        queue: str,
        *,
        purpose: str,
        idle_seconds: float = 2.0,
        max_prefetch: int = MAX_PREFETCH,
    ) -> None:
        self.amqp_url = amqp_url
        self.queue = queue
        self._purpose = purpose
        self._idle = idle_seconds
        self._max_prefetch = max_prefetch
        self._connection: AbstractConnection | None = None

    async def __aenter__(self) -> DeadLetterQueue:
        try:
            # Not a robust connection: after a loss the held messages are back in
            # the queue, and carrying on with a new connection would see them twice.
            self._connection = await connect_once(
                split_urls(self.amqp_url),
                client_properties={"connection_name": f"actionrelay {self._purpose}"},
            )
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"cannot reach RabbitMQ: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self._connection.close()

    async def depths(self, names: list[str]) -> dict[str, int | None]:
        """Ready messages of other queues (holding queues' backlog); None if missing."""
        found: dict[str, int | None] = {}
        for name in names:
            try:
                async with confirming_channel(self._open()) as channel:
                    found[name] = (await declared(channel, name))[1]
            except QueueNotFound:
                found[name] = None
        return found

    def _open(self) -> AbstractConnection:
        if self._connection is None:
            raise RuntimeError("DeadLetterQueue is not open")
        return self._connection

    @asynccontextmanager
    async def _held(self, report: ScanReport) -> AsyncIterator[HeldScan]:
        async with held_scan(self._open(), self.queue, self._idle, self._max_prefetch) as scan:
            report.depth = scan.depth
            yield scan
            report.max_delivery_count = scan.max_delivery_count
            report.stalled = scan.stalled

    async def inspect(
        self,
        criteria: DeadLetterFilter,
        visit: Callable[[DeadLetter], None],
        *,
        limit: int | None = None,
        skip: int = 0,
        progress: Progress | None = None,
    ) -> ScanReport:
        """Call ``visit`` for each matching dead letter after the first ``skip`` (at most
        ``limit`` of them); change nothing. ``matched`` counts the skipped ones too."""
        report = ScanReport(self.queue)
        until = None if limit is None else skip + limit
        async with (
            self._held(report) as scan,
            aclosing(_each(scan, criteria, report, until, progress)) as held,
        ):
            async for (_, letter), matched in held:
                if matched and report.matched > skip:
                    visit(letter)
        return report

    async def replay(
        self,
        criteria: DeadLetterFilter,
        target: str,
        *,
        limit: int | None = None,
        batch: int = 100,
        progress: Progress | None = None,
    ) -> ReplayReport:
        """Copy matching dead letters to ``target``; each is acked once its copy is confirmed."""
        report = ReplayReport(self.queue, target=target)
        async with confirming_channel(self._open()) as channel:
            await declared(channel, target)  # fail early, before holding anything
        async with self._held(report) as scan:
            pending: list[Held] = []
            all_match = True  # every message held so far is being replayed
            async with aclosing(_each(scan, criteria, report, limit, progress)) as held:
                async for item, matched in held:
                    if matched:
                        pending.append(item)
                    else:
                        all_match = False
                    if len(pending) >= batch and not await self._flush(
                        scan, pending, report, all_match
                    ):
                        break
            if pending:
                await self._flush(scan, pending, report, all_match)
        return report

    async def purge(
        self,
        criteria: DeadLetterFilter,
        *,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> PurgeReport:
        """Delete (ack) matching dead letters; the others go back untouched."""
        report = PurgeReport(self.queue)
        async with (
            self._held(report) as scan,
            aclosing(_each(scan, criteria, report, limit, progress)) as held,
        ):
            async for (message, _), matched in held:
                if matched:
                    await scan.ack(message)
                    report.purged += 1
        return report

    async def _flush(
        self, scan: HeldScan, pending: list[Held], report: ReplayReport, all_match: bool
    ) -> bool:
        """Publish copies, wait for every confirm, ack the confirmed; False if any failed.

        When every message held so far was replayed, one ``multiple`` ack settles
        the batch: a single command that a quorum queue cannot hold back.
        """
        target = report.target
        outcomes = await asyncio.gather(
            *(self._publish(scan.channel, item, target) for item in pending),
            return_exceptions=True,
        )
        failed = [
            (letter, outcome)
            for (_, letter), outcome in zip(pending, outcomes, strict=True)
            if outcome is not None
        ]
        if not failed and all_match:
            await scan.ack_read(pending[-1][0])
            report.replayed += len(pending)
        else:
            for (message, _), outcome in zip(pending, outcomes, strict=True):
                if outcome is None:
                    await scan.ack(message)
                    report.replayed += 1
        for letter, outcome in failed:
            if not isinstance(outcome, aiormq.exceptions.DeliveryError | TimeoutError):
                raise outcome
            reason = str(outcome) or type(outcome).__name__
            report.failures.append(f"{letter.event_id}: not confirmed by {target}: {reason}")
        pending.clear()
        return not report.failures

    async def _publish(self, channel: AbstractChannel, item: Held, target: str) -> None:
        message, letter = item
        await guarded(
            channel.default_exchange.publish(
                replay_copy(message, letter),
                routing_key=target,
                mandatory=True,  # a missing target returns the copy instead of dropping it
                timeout=PUBLISH_TIMEOUT_SECONDS,
            )
        )


async def _each(
    scan: HeldScan,
    criteria: DeadLetterFilter,
    report: ScanReport,
    limit: int | None,
    progress: Progress | None,
) -> AsyncGenerator[tuple[Held, bool], None]:
    """Each held message, head first, with whether it matches; stops after ``limit`` matches.

    ``report`` counts what was read and matched; ``progress`` hears of each message
    once the caller has dealt with it.
    """
    while (limit is None or report.matched < limit) and (item := await scan.next()):
        report.scanned += 1
        matched = criteria.matches(item[1])
        report.matched += matched
        yield item, matched
        if progress:
            progress(report.scanned, report.depth)
