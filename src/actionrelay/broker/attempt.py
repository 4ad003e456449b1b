"""One delivery of a step event: what is known about it and what becomes of it."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import structlog

from actionrelay.broker.delivery import Incoming
from actionrelay.broker.topology import HELD_SINCE
from actionrelay.core import retry
from actionrelay.core.action import HEADER_VALUE, ActionDefinition
from actionrelay.core.errors import DeadlineExpired, StepFailure
from actionrelay.core.event import ActionResult, StepRecord, amqp_id
from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.settings import Settings

log = structlog.get_logger("actionrelay.worker")
HELD_SINCE_HEADER = HELD_SINCE


class InternalError(StepFailure):
    """A bug in actionrelay; the event is dead-lettered so that it is not lost."""

    error_type = "internal"


class ResultUnpublishable(StepFailure):
    """RabbitMQ would not take the event's result; dead-lettered so the API is not
    called again."""

    error_type = "result_unpublishable"


UNPUBLISHABLE = ResultUnpublishable.error_type


class Fate(enum.Enum):
    DONE = "done"  # result published (success or capped)
    RETRY = "retry"  # waits in a delay queue; one more attempt used
    PARK = "park"  # waits in a delay queue; no attempt used (breaker open)
    HOLD = "hold"  # queued behind the endpoint's throttle
    DEAD = "dead"  # final failure: result and dead letter


class Verdict(NamedTuple):
    """What becomes of one delivery: its fate and what settling it publishes."""

    fate: Fate
    delay: float  # seconds in the delay ladder (RETRY, PARK)
    failure: StepFailure | None  # dead-lettered with the event (DEAD)
    hold: EndpointConfig | None  # the throttled endpoint whose queue it joins (HOLD)
    result: ActionResult


@dataclass(slots=True)
class Attempt:
    """Everything known about one delivery of a step event."""

    message: Incoming
    state: retry.RetryState
    event: StepRecord | None = None  # once the body is a valid step event
    action: ActionDefinition | None = None
    called_at: datetime | None = None
    latency_ms: float | None = None
    held_since: float | None = None  # epoch seconds, when it came through a holding queue

    @property
    def attempts(self) -> int:
        """Calls made for this event so far, this one included."""
        return self.state.attempts + (1 if self.called_at else 0)

    def deadline(self) -> datetime | None:
        if self.event is not None and self.event.deadline is not None:
            return self.event.deadline
        if self.action is not None and self.action.max_age_seconds is not None:
            return self.state.first_received_at + timedelta(seconds=self.action.max_age_seconds)
        return None


def trace_headers(message: Incoming) -> dict[str, str]:
    """W3C trace context of the step event, carried to the call and to the result."""
    headers = message.headers or {}
    out = {}
    for name in ("traceparent", "tracestate"):
        value = headers.get(name)
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if isinstance(value, str) and HEADER_VALUE.fullmatch(value) and len(value) <= 512:
            out[name] = value
    return out


def held_since(headers: Mapping[str, Any] | None) -> float:
    """When the event joined its endpoint's holding queue (epoch seconds)."""
    value = (headers or {}).get(HELD_SINCE_HEADER)
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 1000
    return time.time()


def addressable(message: Incoming, result: ActionResult) -> bool:
    return bool(result.event_id or message.reply_to or message.correlation_id or message.message_id)


def result_message_id(message: Incoming, result: ActionResult) -> str | None:
    """``<event_id>.result``, else the event's message_id or correlation_id with
    ``.result`` (hashed when too long for AMQP); None leaves it to aiormq (random)."""
    key = result.event_id or message.message_id or message.correlation_id
    return amqp_id(key, ".result") if key else None


def correlation_id(message: Incoming, result: ActionResult) -> str | None:
    """The result's correlation_id: the event's, else its message_id, else its event_id
    (hashed when too long for AMQP, see ``event.amqp_id``)."""
    if message.correlation_id or message.message_id:
        return message.correlation_id or message.message_id
    return amqp_id(result.event_id) if result.event_id else None


def call_timeout(action: ActionDefinition, deadline: datetime | None) -> float:
    if deadline is None:
        return action.timeout_seconds
    remaining = (deadline - datetime.now(UTC)).total_seconds()
    if remaining <= 0:
        raise DeadlineExpired(
            f"deadline {deadline.isoformat()} passed {-remaining:.1f} s ago; "
            f"action {action.name} was not called"
        )
    return min(action.timeout_seconds, remaining)


def dead_letter_metadata(
    attempt: Attempt, result: ActionResult, failure: StepFailure, settings: Settings
) -> dict[str, Any]:
    last_attempt = attempt.called_at
    first_attempt = attempt.state.first_attempt_at or last_attempt
    return {
        "error-type": failure.error_type,
        "error-message": failure.message[:1000],
        "status-code": result.status_code,
        "http-status": failure.http_status,
        "attempts": result.attempts,
        "first-attempt-at": first_attempt.isoformat() if first_attempt else None,
        "last-attempt-at": last_attempt.isoformat() if last_attempt else None,
        "action": result.action,
        "action-version": result.action_version,
        "failed-at": result.completed_at,
        "worker-id": settings.worker_id,
    }


def unpublishable_metadata(
    attempt: Attempt, result: ActionResult, exc: Exception, settings: Settings
) -> dict[str, Any]:
    """Dead-letter headers of an event whose result RabbitMQ would not take."""
    calls = f"the API was called {result.attempts} time(s)" if result.attempts else "no call"
    failure = ResultUnpublishable(
        f"the {result.status} result (status_code {result.status_code}) could not be "
        f"published: {type(exc).__name__}: {exc}; {calls}, and it is not called again. "
        "Replay the event once the cause is fixed.",
        http_status=result.http_status,
    )
    return dead_letter_metadata(attempt, result, failure, settings)


def log_result(result: ActionResult) -> None:
    fields = {
        "event_id": result.event_id,
        "action": result.action,
        "status": result.status,
        "status_code": result.status_code,
        "http_status": result.http_status,
        "attempts": result.attempts,
        "latency_ms": result.latency_ms,
    }
    if result.error is None:
        log.info("action.completed", **fields)
    else:
        log.warning(
            "action.failed", error_type=result.error.type, error=result.error.message, **fields
        )
