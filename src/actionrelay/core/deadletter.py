"""Dead letters as the on-call engineer sees them, and the copies a replay sends back.

Pure: no I/O. ``actionrelay.broker.dlq`` takes messages off the dead-letter queue and
puts them back; this module only decides what a message says and what its
replay copy carries.

Two kinds of dead letter exist: those a worker wrote (``x-actionrelay-*``
failure headers, see ``docs/reliability.md``) and those RabbitMQ dead-lettered
itself after the request queue's delivery limit (only an ``x-death`` header);
the latter are shown with error type ``delivery_limit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

DEAD_LETTER_HEADER_PREFIX = PREFIX = "x-actionrelay-"
# Headers RabbitMQ adds when it dead-letters or redelivers.
BROKER_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
        "x-acquired-count",
    }
)
REPLAY_COUNT_HEADER = f"{PREFIX}replay-count"
REPLAYED_AT_HEADER = f"{PREFIX}replayed-at"
REPLAYED_FROM_PREFIX = f"{PREFIX}replayed-from-"
# The failure worth keeping on a replayed event, under x-actionrelay-replayed-from-*.
REPLAYED_FROM = ("error-type", "error-message", "status-code", "http-status", "failed-at")
BROKER_ERROR_TYPES = {"delivery_limit": "delivery_limit"}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of the dead-letter queue; ``position`` is its place in the scan (0 = head)."""

    position: int
    event_id: str | None
    action: str | None
    error_type: str
    error_message: str
    status_code: str | None
    http_status: int | None
    attempts: int | None
    failed_at: datetime | None
    replay_count: int
    delivery_count: int | None
    headers: dict[str, Any]
    properties: dict[str, Any]
    body: bytes
    raw_headers: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_message(
        cls,
        position: int,
        body: bytes,
        headers: Mapping[str, Any] | None,
        properties: Mapping[str, Any],
    ) -> DeadLetter:
        raw_headers = dict(headers or {})
        headers = {k: plain(v) for k, v in raw_headers.items()}
        event = _json_object(body)
        failure = _worker_failure(headers) or _broker_failure(headers)
        event_id = _text(event.get("event_id")) or _text(properties.get("message_id"))
        return cls(
            position=position,
            event_id=event_id,
            action=_text(headers.get(f"{PREFIX}action")) or _text(event.get("action")),
            error_type=failure.error_type,
            error_message=failure.message,
            status_code=failure.status_code,
            http_status=_int(headers.get(f"{PREFIX}http-status")),
            attempts=_int(headers.get(f"{PREFIX}attempts")),
            failed_at=failure.failed_at,
            replay_count=_int(headers.get(REPLAY_COUNT_HEADER)) or 0,
            delivery_count=_delivery_count(headers),
            headers=headers,
            properties={k: plain(v) for k, v in properties.items() if v is not None},
            body=body,
            raw_headers=raw_headers,
        )

    def event(self) -> Any:
        """The step event as JSON, or its text when it is not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return self.body.decode("utf-8", errors="replace")

    def summary(self) -> dict[str, Any]:
        """The fields ``dlq list --json`` prints, one object per dead letter."""
        return {
            "position": self.position,
            "event_id": self.event_id,
            "action": self.action,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "status_code": self.status_code,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "replay_count": self.replay_count,
        }

    def detail(self) -> dict[str, Any]:
        """Everything ``dlq show --json`` prints: the summary, headers, properties, event."""
        return {
            **self.summary(),
            "delivery_count": self.delivery_count,
            "headers": self.headers,
            "properties": self.properties,
            "event": self.event(),
        }


@dataclass(frozen=True, slots=True)
class _Failure:
    error_type: str
    message: str
    status_code: str | None
    failed_at: datetime | None


def _worker_failure(headers: Mapping[str, Any]) -> _Failure | None:
    error_type = _text(headers.get(f"{PREFIX}error-type"))
    if error_type is None:
        return None
    return _Failure(
        error_type,
        _text(headers.get(f"{PREFIX}error-message")) or "",
        _text(headers.get(f"{PREFIX}status-code")),
        parse_time(headers.get(f"{PREFIX}failed-at")),
    )


def _broker_failure(headers: Mapping[str, Any]) -> _Failure:
    deaths = headers.get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths else {}
    if not isinstance(death, dict):
        death = {}
    reason = _text(death.get("reason")) or _text(headers.get("x-first-death-reason"))
    if reason is None:
        return _Failure("unknown", "no x-actionrelay failure headers and no x-death", None, None)
    queue = _text(death.get("queue")) or _text(headers.get("x-first-death-queue")) or "?"
    message = f"dead-lettered by RabbitMQ from {queue}: {reason}"
    if reason == "delivery_limit":
        message += " (every delivery ended without an ack: did the event crash the workers?)"
    return _Failure(
        BROKER_ERROR_TYPES.get(reason, f"broker_{reason}"),
        message,
        None,
        parse_time(death.get("time")),
    )


def replay_headers(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    """The headers of the copy sent back for processing.

    Attempt and failure headers are dropped (the worker starts counting again),
    the failure is kept under ``x-actionrelay-replayed-from-*`` and the replay
    count goes up by one. Headers of other producers (``traceparent``…) stay.
    """
    kept = {
        k: v
        for k, v in letter.raw_headers.items()
        if not k.startswith(PREFIX) and k not in BROKER_HEADERS
    }
    failure = {
        "error-type": letter.error_type,
        "error-message": letter.error_message,
        "status-code": letter.status_code,
        "http-status": letter.http_status,
        "failed-at": letter.failed_at.isoformat() if letter.failed_at else None,
    }
    kept |= {f"{REPLAYED_FROM_PREFIX}{k}": v for k, v in failure.items() if v is not None}
    kept[REPLAY_COUNT_HEADER] = letter.replay_count + 1
    kept[REPLAYED_AT_HEADER] = now.isoformat()
    return kept


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text or an AMQP timestamp (UTC when no zone)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def plain(value: Any) -> Any:
    """An AMQP header value as JSON-friendly Python (bytes as text, times as ISO 8601)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _delivery_count(headers: Mapping[str, Any]) -> int | None:
    """Deliveries so far: RabbitMQ 3.x counts in x-delivery-count, 4.x also in x-acquired-count."""
    counts = [_int(headers.get(k)) for k in ("x-delivery-count", "x-acquired-count")]
    present = [c for c in counts if c is not None]
    return max(present) if present else None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
