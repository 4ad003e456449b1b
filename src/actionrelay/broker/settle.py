"""Carrying out a step event's fate: publish what it needs, confirmed, then ack.

One rule per ``Fate`` (see worker.py); an ack is sent only once everything the
fate publishes is confirmed by the broker, and acks are batched (broker/acks.py).
"""

from __future__ import annotations

import time

import aiormq
import structlog
from yarl import URL

from actionrelay.broker.acks import AckBatcher
from actionrelay.broker.attempt import (
    HELD_SINCE_HEADER,
    UNPUBLISHABLE,
    Attempt,
    Fate,
    addressable,
    correlation_id,
    dead_letter_metadata,
    log_result,
    result_message_id,
    trace_headers,
    unpublishable_metadata,
)
from actionrelay.broker.broker import Broker, Refused
from actionrelay.broker.connection import CONNECTION_ERRORS
from actionrelay.broker.delivery import Incoming
from actionrelay.core.errors import StepFailure
from actionrelay.core.event import ActionResult
from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.observability.metrics import Metrics
from actionrelay.settings import Settings

log = structlog.get_logger("actionrelay.worker")


class Settler:
    def __init__(self, broker: Broker, metrics: Metrics, settings: Settings) -> None:
        self._broker = broker
        self._metrics = metrics
        self._settings = settings
        self._batchers: dict[int, AckBatcher] = {}

    def delivered(self, message: Incoming) -> None:
        """Call in delivery order, as each message arrives."""
        self._acks(message).delivered(message.delivery_tag or 0)

    async def drain(self) -> None:
        """Send every pending ack (graceful shutdown)."""
        for batcher in self._batchers.values():
            await batcher.drain()

    def _acks(self, message: Incoming) -> AckBatcher:
        """The ack batcher of the message's channel (a reconnect brings a new one)."""
        channel = message.channel
        batcher = self._batchers.get(id(channel))
        if batcher is None:
            self._batchers = {k: b for k, b in self._batchers.items() if not b.closed}
            batcher = self._batchers[id(channel)] = AckBatcher(channel)
        return batcher

    async def settle(
        self,
        attempt: Attempt,
        fate: Fate,
        result: ActionResult,
        failure: StepFailure | None,
        delay: float,
        hold: EndpointConfig | None = None,
    ) -> None:
        """Publish what the event's fate needs, confirmed, then ack it."""
        message = attempt.message
        if not _channel_open(message):
            return  # the delivery died with its channel; RabbitMQ redelivers the event
        action = result.action or "unknown"
        try:
            if fate in (Fate.RETRY, Fate.PARK):
                await self._schedule_retry(attempt, result, delay)
                self._metrics.retries.labels(action, fate.value).inc()
            elif fate is Fate.HOLD:
                assert hold is not None
                # Integer milliseconds: AMQP carries a float as 32 bits, minutes off today.
                held_at = {HELD_SINCE_HEADER: int(time.time() * 1000)}
                await self._broker.publish_holding(message, hold, held_at)
                self._metrics.throttled.labels(URL(hold.url).host or "").inc()
            else:
                await self._publish_final(attempt, result, failure)
            self._acks(message).settle(message.delivery_tag or 0)
        except CONNECTION_ERRORS as exc:
            log.warning("worker.broker_lost", event_id=result.event_id, error=str(exc))
            if _channel_open(message):
                # Publishing went through another channel than the delivery's (a held
                # event): give the event back now, or it keeps its slot until a restart.
                await _requeue(message)
                self._acks(message).forget(message.delivery_tag or 0)
        except Refused as exc:
            if fate in (Fate.DONE, Fate.DEAD):
                await self._give_up(attempt, result, exc)
            else:  # a full delay ladder or holding queue: the event is tried again later
                log.warning("worker.copy_refused", event_id=result.event_id, error=str(exc))
                await _requeue(message)
                self._acks(message).forget(message.delivery_tag or 0)
        except Exception as exc:  # cannot be published as it is: never call the API again
            log.exception("worker.finish_failed", event_id=result.event_id)
            await self._give_up(attempt, result, exc)

    async def _give_up(self, attempt: Attempt, result: ActionResult, exc: Exception) -> None:
        """Dead-letter the event once, saying why its result could not be published, so
        that a redelivery never calls the API again; RabbitMQ's own dead-lettering is
        the last resort (``nack`` without requeue: ``x-death`` reason ``rejected``)."""
        message, action = attempt.message, result.action or "unknown"
        self._metrics.unpublishable.labels(action).inc()
        metadata = unpublishable_metadata(attempt, result, exc, self._settings)
        log.error("worker.result_unpublishable", event_id=result.event_id, error=str(exc))
        for keep_headers in (True, False):  # the event's own headers may be what fails
            try:
                await self._broker.dead_letter(message, metadata, keep_headers=keep_headers)
            except CONNECTION_ERRORS:
                log.warning("worker.broker_lost", event_id=result.event_id)
                return  # redelivered: at-least-once, as for any lost connection
            except Exception:
                log.exception("worker.dead_letter_failed", event_id=result.event_id)
                continue
            self._metrics.dead_lettered.labels(action, UNPUBLISHABLE).inc()
            self._acks(message).settle(message.delivery_tag or 0)
            return
        self._acks(message).forget(message.delivery_tag or 0)
        try:
            await message.nack(requeue=False)
        except CONNECTION_ERRORS:
            log.warning("worker.broker_lost", event_id=result.event_id)

    async def _publish_final(
        self, attempt: Attempt, result: ActionResult, failure: StepFailure | None
    ) -> None:
        message, action = attempt.message, result.action or "unknown"
        if addressable(message, result):
            await self._broker.publish_result(
                result,
                reply_to=message.reply_to,
                correlation_id=correlation_id(message, result),
                message_id=result_message_id(message, result),
                headers=trace_headers(message),
            )
        self._metrics.results.labels(action, result.status, result.status_code).inc()
        if failure is not None:
            metadata = dead_letter_metadata(attempt, result, failure, self._settings)
            await self._broker.dead_letter(message, metadata)
            self._metrics.dead_lettered.labels(action, failure.error_type).inc()
        log_result(result)

    async def _schedule_retry(self, attempt: Attempt, result: ActionResult, delay: float) -> None:
        headers = attempt.state.headers_after(attempt.called_at)
        headers[HELD_SINCE_HEADER] = None  # a retry queues behind the throttle anew
        if result.error is not None:
            headers["x-actionrelay-last-error"] = result.error.message[:500]
        delay_ms = await self._broker.publish_retry(attempt.message, delay, headers)
        log.info(
            "action.retry_scheduled",
            event_id=result.event_id,
            action=result.action,
            status_code=result.status_code,
            attempts=attempt.attempts,
            delay_ms=delay_ms,
        )


def _channel_open(message: Incoming) -> bool:
    """Whether the delivery's own channel is open (aio-pika raises once it closed)."""
    try:
        return not message.channel.is_closed
    except aiormq.exceptions.ChannelInvalidStateError:
        return False


async def _requeue(message: Incoming) -> None:
    try:
        await message.nack(requeue=True)
    except CONNECTION_ERRORS:
        log.warning("worker.broker_lost", note="event will be redelivered")
