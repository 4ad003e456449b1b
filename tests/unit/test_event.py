"""Parsing the step events the journey engine sends."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import orjson
import pytest

from actionrelay.errors import InvalidEvent
from actionrelay.event import dumps_fitted, parse_step_event, salvage_ids

DOCUMENTED = {
    "event_id": "e-9f2",
    "action": "sendSms",
    "journey": {"id": "welcome", "version": "3", "step_id": "sms-1"},
    "profile_id": "p-42",
    "params": {"phone": "+33612345678", "text": "Hi", "tenant": "acme", "country": "fr"},
    "deadline": "2026-11-27T12:00:30Z",
}


def test_the_documented_event_is_accepted() -> None:
    event = parse_step_event(orjson.dumps(DOCUMENTED))
    assert event.event_id == "e-9f2"
    assert event.action == "sendSms"
    assert event.journey == DOCUMENTED["journey"]
    assert event.profile_id == "p-42"
    assert event.params == DOCUMENTED["params"]
    assert event.deadline == datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)


def test_only_event_id_and_action_are_required() -> None:
    event = parse_step_event(b'{"event_id": "e-1", "action": "ping"}')
    assert (event.journey, event.profile_id, event.params, event.deadline) == (None, None, {}, None)


def test_unknown_keys_are_ignored() -> None:
    body = orjson.dumps({**DOCUMENTED, "priority": "high", "trace": {"id": 1}})
    assert parse_step_event(body) == parse_step_event(orjson.dumps(DOCUMENTED))


def test_a_deadline_with_an_offset_is_accepted() -> None:
    event = parse_step_event(
        b'{"event_id": "e", "action": "a", "deadline": "2026-11-27T14:00:30+02:00"}'
    )
    assert event.deadline == datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)


BAD_EVENTS: list[tuple[bytes, str]] = [
    (b"{not json", "message body is not valid JSON: "),
    (b"", "message body is not valid JSON: "),
    (b"\xff\xfe", "message body is not valid JSON: "),
    (b"[1, 2]", "message body must be a JSON object, not list"),
    (b'"sendSms"', "message body must be a JSON object, not str"),
    (b"42", "message body must be a JSON object, not int"),
    (b"null", "message body must be a JSON object, not NoneType"),
    (b'{"action": "sendSms"}', "invalid step event: event_id: Field required"),
    (b'{"event_id": "e-1"}', "invalid step event: action: Field required"),
    (b"{}", "invalid step event: event_id: Field required; action: Field required"),
    (
        b'{"event_id": "", "action": "a"}',
        "invalid step event: event_id: String should have at least 1 character",
    ),
    (
        b'{"event_id": 7, "action": "a"}',
        "invalid step event: event_id: Input should be a valid string",
    ),
    (
        orjson.dumps({"event_id": "e" * 257, "action": "a"}),
        "invalid step event: event_id: String should have at most 256 characters",
    ),
    (
        b'{"event_id": "e", "action": "a", "deadline": "2026-11-27T12:00:30"}',
        "invalid step event: deadline: Input should have timezone info",
    ),
    (
        b'{"event_id": "e", "action": "a", "deadline": "soon"}',
        "invalid step event: deadline: Input should be a valid datetime",
    ),
    (
        b'{"event_id": "e", "action": "a", "params": ["x"]}',
        "invalid step event: params: Input should be a valid dictionary",
    ),
]


@pytest.mark.parametrize(("body", "problem"), BAD_EVENTS)
def test_a_bad_event_is_refused_saying_what_is_wrong(body: bytes, problem: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_step_event(body)
    assert caught.value.message.startswith(problem)
    assert caught.value.status_code == "invalid"
    assert caught.value.error_type == "invalid_event"


SALVAGE: list[tuple[bytes, tuple[str | None, str | None]]] = [
    (b'{"event_id": "e-1", "action": "sendSms", "deadline": "naive"}', ("e-1", "sendSms")),
    (b'{"event_id": "e-1"}', ("e-1", None)),
    (b'{"action": "sendSms"}', (None, "sendSms")),
    (b'{"event_id": 7, "action": ["sendSms"]}', (None, None)),
    (b"{not json", (None, None)),
    (b"[]", (None, None)),
    (b'"e-1"', (None, None)),
]


@pytest.mark.parametrize(("body", "ids"), SALVAGE)
def test_salvage_ids_keeps_what_can_address_a_result(
    body: bytes, ids: tuple[str | None, str | None]
) -> None:
    assert salvage_ids(body) == ids


def test_dumps_fitted_keeps_only_the_json_not_orjsons_buffer() -> None:
    value = {"event_id": "e-1", "params": {"phone": "+33612345678", "note": "x" * 200}}
    assert dumps_fitted(value) == orjson.dumps(value)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = [dumps_fitted(value) for _ in range(100)]
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    # Each body costs its length plus the bytes header, not a 4 KiB buffer.
    assert grown / len(kept) < len(kept[0]) + 200
