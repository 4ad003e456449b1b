"""Retry classification and scheduling: one pure place, table-tested."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from actionrelay.core.action import RetrySpec
from actionrelay.core.errors import (
    CallTimeout,
    ConnectFailure,
    HttpStatusError,
    PayloadError,
    StepFailure,
    UnknownAction,
)
from actionrelay.core.retry import (
    ATTEMPTS_HEADER,
    FIRST_ATTEMPT_HEADER,
    FIRST_RECEIVED_HEADER,
    RetryState,
    backoff,
    decide,
    is_retryable,
    is_retryable_status,
    parse_retry_after,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
DEFAULT = RetrySpec()


def http(status: int, **kwargs: object) -> HttpStatusError:
    return HttpStatusError(f"HTTP {status}", http_status=status, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True), (423, True), (425, True), (429, True),
        (500, True), (502, True), (503, True), (504, True), (507, True), (599, True),
        (501, False), (505, False),
        (400, False), (401, False), (403, False), (404, False), (409, False), (422, False),
        (302, False), (200, False),
    ],
)  # fmt: skip
def test_status_classification(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable
    assert is_retryable(http(status), DEFAULT) is retryable


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (CallTimeout("slow"), True),
        (ConnectFailure("refused"), True),
        (PayloadError("missing variable"), False),
        (UnknownAction("nope"), False),
        (http(503, abort=True), False),
    ],
)
def test_failure_classification(failure: StepFailure, retryable: bool) -> None:
    assert is_retryable(failure, DEFAULT) is retryable


@pytest.mark.parametrize(
    ("on", "failure", "retryable"),
    [
        (["timeout"], CallTimeout("slow"), True),
        (["timeout"], ConnectFailure("refused"), False),
        (["connection"], ConnectFailure("refused"), True),
        (["503"], http(503), True),
        (["503"], http(502), False),
        (["5xx"], http(501), True),
        (["4xx"], http(404), True),
        (["5xx"], http(503, abort=True), False),
        (["5xx"], PayloadError("bad"), False),
    ],
)
def test_action_override(on: list[str], failure: StepFailure, retryable: bool) -> None:
    assert is_retryable(failure, RetrySpec(on=on)) is retryable


@pytest.mark.parametrize("bad", ["6xx", "teapot", "50", "5x"])
def test_override_rejects_unknown_classes(bad: str) -> None:
    with pytest.raises(ValueError, match="is not timeout, connection"):
        RetrySpec(on=[bad])


@pytest.mark.parametrize(("attempt", "base"), [(1, 1.0), (2, 5.0), (3, 30.0), (9, 30.0)])
def test_backoff_follows_schedule_within_jitter(attempt: int, base: float) -> None:
    rng = random.Random(1)
    waits = [backoff(DEFAULT, attempt, rng) for _ in range(200)]
    assert min(waits) >= base * 0.8
    assert max(waits) <= base * 1.2
    assert max(waits) - min(waits) > base * 0.2  # jitter is really applied


def test_backoff_without_jitter_is_exact() -> None:
    spec = RetrySpec(schedule_seconds=[0.5, 2], jitter=0)
    assert [backoff(spec, n, random.Random()) for n in (1, 2, 3)] == [0.5, 2, 2]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("Fri, 27 Nov 2026 12:00:30 GMT", 30.0),
        ("Fri, 27 Nov 2026 11:59:00 GMT", 0.0),
        ("999999999", 6 * 3600.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_decide_retries_a_transient_failure() -> None:
    spec = RetrySpec(schedule_seconds=[2], jitter=0)
    decision = decide(http(503), spec, attempt=1, now=NOW, deadline=None, rng=random.Random())
    assert decision.retry
    assert decision.delay_seconds == 2


def test_decide_stops_when_attempts_are_exhausted() -> None:
    decision = decide(http(503), DEFAULT, attempt=4, now=NOW, deadline=None, rng=random.Random())
    assert not decision.retry
    assert decision.reason == "gave up after 4 attempts"


def test_decide_stops_on_permanent_failure() -> None:
    decision = decide(http(404), DEFAULT, attempt=1, now=NOW, deadline=None, rng=random.Random())
    assert (decision.retry, decision.reason) == (False, "permanent")


def test_retry_after_lengthens_the_wait_on_429_and_503_only() -> None:
    spec = RetrySpec(schedule_seconds=[1], jitter=0)
    rng = random.Random()
    for status, expected in [(429, 40.0), (503, 40.0), (502, 1.0)]:
        failure = http(status, retry_after="40")
        decision = decide(failure, spec, attempt=1, now=NOW, deadline=None, rng=rng)
        assert decision.delay_seconds == expected


def test_decide_stops_when_the_deadline_would_pass_while_waiting() -> None:
    spec = RetrySpec(schedule_seconds=[10], jitter=0)
    deadline = NOW + timedelta(seconds=5)
    decision = decide(http(503), spec, attempt=1, now=NOW, deadline=deadline, rng=random.Random())
    assert (decision.retry, decision.reason) == (False, "deadline")
    later = NOW + timedelta(seconds=60)
    decision = decide(http(503), spec, attempt=1, now=NOW, deadline=later, rng=random.Random())
    assert decision.retry


def test_retry_state_round_trips_through_headers() -> None:
    fresh = RetryState.from_headers(None, NOW)
    assert (fresh.attempts, fresh.first_received_at, fresh.first_attempt_at) == (0, NOW, None)
    attempt_at = NOW + timedelta(seconds=1)
    headers = fresh.headers_after(attempt_at)
    assert headers[ATTEMPTS_HEADER] == 1
    later = RetryState.from_headers(headers, NOW + timedelta(seconds=9))
    assert later.attempts == 1
    assert later.first_received_at == NOW
    assert later.first_attempt_at == attempt_at
    again = later.headers_after(NOW + timedelta(seconds=10))
    assert again[ATTEMPTS_HEADER] == 2
    assert again[FIRST_ATTEMPT_HEADER] == attempt_at.isoformat()


@pytest.mark.parametrize(
    "headers",
    [
        {ATTEMPTS_HEADER: "three", FIRST_RECEIVED_HEADER: "yesterday"},
        {ATTEMPTS_HEADER: -1, FIRST_RECEIVED_HEADER: 42},
    ],
)
def test_retry_state_ignores_garbage_headers(headers: dict[str, object]) -> None:
    state = RetryState.from_headers(headers, NOW)
    assert (state.attempts, state.first_received_at) == (0, NOW)
