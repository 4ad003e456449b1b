"""Retry decisions. Pure: which failures are retried, and how long to wait.

The policy is a function of the failure, the attempt number, the clock and the
deadline; the caller passes the random source so tests can pin the jitter.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from actionrelay.core.action import RetrySpec
from actionrelay.core.errors import CallTimeout, ConnectFailure, HttpStatusError, StepFailure

RETRYABLE_STATUSES = frozenset({408, 423, 425, 429})
NOT_RETRYABLE_5XX = frozenset({501, 505})
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_SECONDS = 6 * 3600.0


def is_retryable_status(status: int) -> bool:
    """408, 423, 425, 429 and 5xx except 501 and 505."""
    if status in RETRYABLE_STATUSES:
        return True
    return 500 <= status < 600 and status not in NOT_RETRYABLE_5XX


def failure_classes(failure: StepFailure) -> set[str]:
    """The names an action's ``retry.on`` list may use for this failure."""
    if isinstance(failure, CallTimeout):
        return {"timeout"}
    if isinstance(failure, ConnectFailure):
        return {"connection"}
    if isinstance(failure, HttpStatusError):
        status = failure.http_status or 0
        return {str(status), f"{status // 100}xx"}
    return set()


def is_retryable(failure: StepFailure, spec: RetrySpec) -> bool:
    """Classified once, here: the class decides ack, retry later or dead-letter."""
    if isinstance(failure, HttpStatusError):
        if failure.abort:
            return False
        if spec.on is None:
            return is_retryable_status(failure.http_status or 0)
    elif spec.on is None:
        return failure.retryable
    return bool(failure_classes(failure) & set(spec.on or ()))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)


def backoff(spec: RetrySpec, attempt: int, rng: random.Random) -> float:
    """The wait after attempt ``attempt`` (1-based), jittered by ± ``spec.jitter``."""
    schedule = spec.schedule_seconds
    base = schedule[min(attempt - 1, len(schedule) - 1)]
    return max(0.0, base * (1 + rng.uniform(-spec.jitter, spec.jitter)))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay_seconds: float = 0.0
    reason: str = ""


def decide(
    failure: StepFailure,
    spec: RetrySpec,
    *,
    attempt: int,
    now: datetime,
    deadline: datetime | None,
    rng: random.Random,
) -> RetryDecision:
    """Retry after a delay, or stop (with the reason the result will carry)."""
    if not is_retryable(failure, spec):
        return RetryDecision(False, reason="permanent")
    if attempt >= spec.max_attempts:
        return RetryDecision(False, reason=f"gave up after {attempt} attempts")
    delay = backoff(spec, attempt, rng)
    if isinstance(failure, HttpStatusError) and failure.http_status in RETRY_AFTER_STATUSES:
        delay = max(delay, parse_retry_after(failure.retry_after, now) or 0.0)
    if deadline is not None and (deadline - now).total_seconds() <= delay:
        return RetryDecision(False, delay, reason="deadline")
    return RetryDecision(True, delay)


ATTEMPTS_HEADER = "x-actionrelay-attempts"
FIRST_RECEIVED_HEADER = "x-actionrelay-first-received-at"
FIRST_ATTEMPT_HEADER = "x-actionrelay-first-attempt-at"


@dataclass(frozen=True, slots=True)
class RetryState:
    """What travels with a step event between attempts, in its AMQP headers."""

    attempts: int
    first_received_at: datetime
    first_attempt_at: datetime | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, object] | None, now: datetime) -> RetryState:
        headers = headers or {}
        attempts = headers.get(ATTEMPTS_HEADER)
        return cls(
            attempts=attempts if isinstance(attempts, int) and attempts >= 0 else 0,
            first_received_at=_parse_time(headers.get(FIRST_RECEIVED_HEADER)) or now,
            first_attempt_at=_parse_time(headers.get(FIRST_ATTEMPT_HEADER)),
        )

    def headers_after(self, attempt_at: datetime | None) -> dict[str, object]:
        """Headers for the retry copy, once one more attempt was made at ``attempt_at``."""
        first_attempt = self.first_attempt_at or attempt_at
        headers: dict[str, object] = {
            ATTEMPTS_HEADER: self.attempts + (1 if attempt_at else 0),
            FIRST_RECEIVED_HEADER: self.first_received_at.isoformat(),
        }
        if first_attempt is not None:
            headers[FIRST_ATTEMPT_HEADER] = first_attempt.isoformat()
        return headers


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
