"""The worker: step event in, third-party call, result event out.

Ack policy: a step event is acked only after its result (and, for failures,
its dead letter) is confirmed by the broker. A worker that dies before that
leaves the event unacked and RabbitMQ redelivers it (at-least-once).
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from actionrelay.action import ActionDefinition
from actionrelay.broker import CONNECTION_ERRORS, Broker, BrokerUnavailable
from actionrelay.catalog import Catalog
from actionrelay.delivery import HttpClient
from actionrelay.errors import DeadlineExpired, StepFailure, UnknownAction
from actionrelay.event import ActionResult, StepEvent, parse_step_event, salvage_ids
from actionrelay.payload import build_request
from actionrelay.result import check_status, failure_result, success_result
from actionrelay.settings import Settings

log = structlog.get_logger("actionrelay.worker")


class InternalError(StepFailure):
    """A bug in actionrelay; the event is dead-lettered so that it is not lost."""

    error_type = "internal"


class Worker:
    def __init__(
        self, settings: Settings, catalog: Catalog, broker: Broker, http: HttpClient
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.broker = broker
        self.http = http
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._finishing: set[asyncio.Future[None]] = set()
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Consume until ``request_stop``; then shut down gracefully."""
        await self.broker.consume(self._on_message)
        log.info(
            "worker.consuming",
            queue=self.settings.request_queue,
            prefetch=self.settings.prefetch,
            actions=len(self.catalog),
            worker_id=self.settings.worker_id,
        )
        await self._stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop taking work, let in-flight calls finish within the grace, cancel the rest."""
        await self.broker.stop_consuming()
        grace = self.settings.shutdown_grace_seconds
        log.info("worker.stopping", in_flight=len(self._in_flight), grace_seconds=grace)
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                log.warning("worker.abandoned", events=len(pending), note="will be redelivered")
        if self._finishing:
            await asyncio.wait(self._finishing)
        log.info("worker.stopped")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await self._handle(message)
        finally:
            self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        event: StepEvent | None = None
        action: ActionDefinition | None = None
        latency_ms: float | None = None
        try:
            event = parse_step_event(message.body)
            action = self._lookup(event.action)
            timeout = _call_timeout(action, event)
            request = build_request(action, event.params, event.event_id)
            response = await self.http.call(request, timeout)
            latency_ms = response.latency_ms
            check_status(action, response, request.url.host)
            result = success_result(event, action, response, attempts=1)
            failure: StepFailure | None = None
        except StepFailure as exc:
            failure = exc
        except Exception as exc:  # a bug must not lose or stall the event
            log.exception("worker.internal_error", event_id=event and event.event_id)
            failure = InternalError(f"actionrelay internal error: {type(exc).__name__}: {exc}")
        if failure is not None:
            event_id, action_name = (
                (event.event_id, event.action) if event else salvage_ids(message.body)
            )
            result = failure_result(
                failure,
                event_id=event_id,
                action_name=action_name,
                event=event,
                action=action,
                attempts=0 if latency_ms is None and failure.http_status is None else 1,
                latency_ms=latency_ms,
            )
        finishing = asyncio.ensure_future(self._finish(message, result, failure))
        self._finishing.add(finishing)
        finishing.add_done_callback(self._finishing.discard)
        # Publishing and acking are bookkeeping: a cancelled call must not leave half of it.
        await asyncio.shield(finishing)

    def _lookup(self, name: str) -> ActionDefinition:
        try:
            return self.catalog[name]
        except KeyError:
            known = ", ".join(sorted(self.catalog)) or "none"
            raise UnknownAction(f"unknown action {name!r} (known actions: {known})") from None

    async def _finish(
        self, message: AbstractIncomingMessage, result: ActionResult, failure: StepFailure | None
    ) -> None:
        try:
            if _addressable(message, result):
                await self.broker.publish_result(
                    result,
                    reply_to=message.reply_to,
                    correlation_id=message.correlation_id or message.message_id or result.event_id,
                )
            if failure is not None:
                await self.broker.dead_letter(message, _dead_letter_metadata(result, failure, self))
            await message.ack()
        except CONNECTION_ERRORS as exc:
            # The channel is gone with the delivery: RabbitMQ redelivers the event.
            log.warning("worker.broker_lost", event_id=result.event_id, error=str(exc))
            return
        except Exception:  # requeue; the delivery limit bounds the loop
            log.exception("worker.finish_failed", event_id=result.event_id)
            await _requeue(message)
            return
        _log_result(result)


async def _requeue(message: AbstractIncomingMessage) -> None:
    try:
        await message.nack(requeue=True)
    except CONNECTION_ERRORS:
        log.warning("worker.broker_lost", note="event will be redelivered")


def _addressable(message: AbstractIncomingMessage, result: ActionResult) -> bool:
    return bool(result.event_id or message.reply_to or message.correlation_id or message.message_id)


def _call_timeout(action: ActionDefinition, event: StepEvent) -> float:
    if event.deadline is None:
        return action.timeout_seconds
    remaining = (event.deadline - datetime.now(UTC)).total_seconds()
    if remaining <= 0:
        raise DeadlineExpired(
            f"deadline {event.deadline.isoformat()} passed {-remaining:.1f} s ago; "
            f"action {action.name} was not called"
        )
    return min(action.timeout_seconds, remaining)


def _dead_letter_metadata(
    result: ActionResult, failure: StepFailure, worker: Worker
) -> dict[str, Any]:
    return {
        "error-type": failure.error_type,
        "error-message": failure.message[:1000],
        "status-code": result.status_code,
        "http-status": failure.http_status,
        "attempts": result.attempts,
        "action": result.action,
        "action-version": result.action_version,
        "failed-at": result.completed_at,
        "worker-id": worker.settings.worker_id,
    }


def _log_result(result: ActionResult) -> None:
    fields = {
        "event_id": result.event_id,
        "action": result.action,
        "status": result.status,
        "status_code": result.status_code,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
    }
    if result.error is None:
        log.info("action.completed", **fields)
    else:
        log.warning(
            "action.failed", error_type=result.error.type, error=result.error.message, **fields
        )


async def serve(settings: Settings, catalog: Catalog) -> None:
    """Run one worker until SIGTERM/SIGINT; used by ``actionrelay run``."""
    broker = Broker(settings, connection_name=f"actionrelay worker {settings.worker_id}")
    await connect_with_backoff(broker)
    http = HttpClient(max_connections=settings.max_connections)
    worker = Worker(settings, catalog, broker, http)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    try:
        async with http:
            await worker.run()
    finally:
        await broker.close()


async def connect_with_backoff(broker: Broker, attempts: int = 8) -> None:
    """Startup waits for a broker that is still coming up; only BrokerUnavailable is retried."""
    for attempt in range(1, attempts + 1):
        try:
            await broker.connect()
        except BrokerUnavailable as exc:
            if attempt == attempts:
                raise
            delay = min(0.5 * 2**attempt, 10.0)
            log.warning("broker.unavailable", error=str(exc), retry_in_seconds=delay)
            await asyncio.sleep(delay)
        else:
            return
