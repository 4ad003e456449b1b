"""Reading dead letters, filtering them and shaping replay copies: pure, table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from actionrelay.core.deadletter import REPLAY_COUNT_HEADER, DeadLetter, replay_headers
from actionrelay.core.triage import DeadLetterFilter, DeadLetterStats, parse_since

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
WORKER_HEADERS: dict[str, Any] = {
    "x-actionrelay-attempts": 3,
    "x-actionrelay-first-received-at": "2026-11-27T11:00:00+00:00",
    "x-actionrelay-first-attempt-at": "2026-11-27T11:00:00+00:00",
    "x-actionrelay-error-type": "http_error",
    "x-actionrelay-error-message": "action sendSms: api.example.com answered HTTP 503",
    "x-actionrelay-status-code": "http_503",
    "x-actionrelay-http-status": 503,
    "x-actionrelay-action": "sendSms",
    "x-actionrelay-failed-at": "2026-11-27T11:30:00.000Z",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
BROKER_HEADERS: dict[str, Any] = {
    "x-death": [
        {
            "count": 1,
            "reason": "delivery_limit",
            "queue": "actionrelay.requests",
            "time": datetime(2026, 11, 27, 11, 45),
            "exchange": "",
            "routing-keys": ["actionrelay.requests"],
        }
    ],
    "x-first-death-reason": "delivery_limit",
    "x-first-death-queue": "actionrelay.requests",
    "x-delivery-count": 4,
}
BODY = orjson.dumps({"event_id": "e-1", "action": "sendSms", "params": {"phone": "+1"}})


def letter(headers: dict[str, Any], body: bytes = BODY, **properties: Any) -> DeadLetter:
    return DeadLetter.from_message(0, body, headers, properties)


def test_a_worker_dead_letter_says_what_failed() -> None:
    dead = letter(WORKER_HEADERS)
    assert dead.event_id == "e-1"
    assert dead.action == "sendSms"
    assert dead.error_type == "http_error"
    assert dead.status_code == "http_503"
    assert dead.http_status == 503
    assert dead.attempts == 3
    assert dead.failed_at == datetime(2026, 11, 27, 11, 30, tzinfo=UTC)
    assert dead.replay_count == 0


def test_a_rabbitmq_dead_letter_is_a_delivery_limit() -> None:
    dead = letter(BROKER_HEADERS)
    assert dead.error_type == "delivery_limit"
    assert dead.action == "sendSms"  # from the event itself
    assert "actionrelay.requests" in dead.error_message
    assert dead.failed_at == datetime(2026, 11, 27, 11, 45, tzinfo=UTC)
    assert dead.delivery_count == 4
    assert dead.detail()["headers"]["x-death"][0]["time"] == "2026-11-27T11:45:00+00:00"


def test_a_body_that_is_not_json_is_shown_as_text_with_the_message_id() -> None:
    dead = letter(
        WORKER_HEADERS | {"x-actionrelay-error-type": "invalid_event"},
        b"\xffnot json",
        message_id="m-7",
    )
    assert dead.event_id == "m-7"
    assert dead.event() == "\ufffdnot json"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("2d", NOW - timedelta(days=2)),
        ("1w", NOW - timedelta(weeks=1)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00+01:00", datetime(2026, 11, 27, 9, tzinfo=UTC)),
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
    ],
)
def test_since_accepts_iso_8601_and_spans(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "1x", "-1h", "h"])
def test_since_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_since(text, NOW)


@pytest.mark.parametrize(
    ("criteria", "matches"),
    [
        (DeadLetterFilter(), True),
        (DeadLetterFilter(actions=frozenset({"sendSms", "other"})), True),
        (DeadLetterFilter(actions=frozenset({"other"})), False),
        (DeadLetterFilter(error_types=frozenset({"http_error"})), True),
        (DeadLetterFilter(error_types=frozenset({"timeout"})), False),
        (DeadLetterFilter(http_statuses=frozenset({503})), True),
        (DeadLetterFilter(http_statuses=frozenset({404})), False),
        (DeadLetterFilter(event_ids=frozenset({"e-1"})), True),
        (DeadLetterFilter(since=datetime(2026, 11, 27, 11, 30, tzinfo=UTC)), True),
        (DeadLetterFilter(since=datetime(2026, 11, 27, 11, 31, tzinfo=UTC)), False),
        (
            DeadLetterFilter(actions=frozenset({"sendSms"}), error_types=frozenset({"timeout"})),
            False,
        ),
    ],
)
def test_filters_combine_with_and(criteria: DeadLetterFilter, matches: bool) -> None:
    assert criteria.matches(letter(WORKER_HEADERS)) is matches


def test_a_replay_copy_starts_its_attempts_again_and_remembers_the_failure() -> None:
    headers = replay_headers(letter(WORKER_HEADERS | {REPLAY_COUNT_HEADER: 1}), NOW)
    assert headers == {
        "traceparent": WORKER_HEADERS["traceparent"],
        "x-actionrelay-replayed-from-error-type": "http_error",
        "x-actionrelay-replayed-from-error-message": WORKER_HEADERS["x-actionrelay-error-message"],
        "x-actionrelay-replayed-from-status-code": "http_503",
        "x-actionrelay-replayed-from-http-status": 503,
        "x-actionrelay-replayed-from-failed-at": "2026-11-27T11:30:00+00:00",
        "x-actionrelay-replay-count": 2,
        "x-actionrelay-replayed-at": NOW.isoformat(),
    }


def test_a_replayed_poison_message_loses_the_broker_headers() -> None:
    headers = replay_headers(letter(BROKER_HEADERS), NOW)
    assert not {k for k in headers if k.startswith(("x-death", "x-first-death"))}
    assert "x-delivery-count" not in headers
    assert headers["x-actionrelay-replayed-from-error-type"] == "delivery_limit"
    assert headers[REPLAY_COUNT_HEADER] == 1


def test_stats_count_by_action_error_type_and_status() -> None:
    stats = DeadLetterStats()
    for headers in (WORKER_HEADERS, WORKER_HEADERS, BROKER_HEADERS):
        stats.add(letter(headers))
    assert stats.as_json() == {
        "total": 3,
        "by_action": {"sendSms": 3},
        "by_error_type": {"http_error": 2, "delivery_limit": 1},
        "by_http_status": {"503": 2, "-": 1},
        "by_cause": [
            {"action": "sendSms", "error_type": "http_error", "http_status": "503", "count": 2},
            {"action": "sendSms", "error_type": "delivery_limit", "http_status": "-", "count": 1},
        ],
    }
