"""Parsing the step events the journey engine sends."""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime

import orjson
import pytest

from actionrelay.core.errors import InvalidEvent
from actionrelay.core.event import (
    MAX_HEADERS_BYTES,
    amqp_id,
    check_headers,
    dumps_fitted,
    parse_step_event,
    salvage_ids,
)

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


DEADLINE_PROBLEM = (
    "must be an RFC 3339 date-time with seconds and a time zone offset, like 2026-11-27T12:00:30Z"
)
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
    *[
        (
            orjson.dumps({"event_id": "e", "action": "a", "deadline": deadline}),
            f"invalid step event: deadline: {DEADLINE_PROBLEM}",
        )
        for deadline in (
            "2026-11-27T12:00:30",  # no offset
            "soon",
            "2026-11-27T12:00Z",  # no seconds
            "2026-11-27T23:59:60Z",  # a leap second
            "2026-11-27 12:00:30Z",  # a space for the T
            1764244800,  # a Unix time
            "2026-11-27T24:00:00Z",
        )
    ],
    (
        b'{"event_id": "e", "action": "a", "deadline": "2026-02-30T12:00:30Z"}',
        "invalid step event: deadline: Input should be a valid datetime or date, day value",
    ),
    (
        orjson.dumps({"event_id": "a\nb", "action": "a"}),
        "invalid step event: event_id: String should match pattern",
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


@pytest.mark.parametrize(
    "deadline",
    [
        "2026-11-27T12:00:30Z",
        "2026-11-27T12:00:30.123456+01:00",
        "2026-11-27t12:00:30z",
        "2026-11-27T23:59:59-05:30",
    ],
)
def test_a_deadline_is_rfc_3339_with_seconds_and_an_offset(deadline: str) -> None:
    event = parse_step_event(orjson.dumps({"event_id": "e", "action": "a", "deadline": deadline}))
    assert event.deadline is not None
    assert event.deadline.utcoffset() is not None


@pytest.mark.parametrize(
    ("value", "fits"),
    [("e-1", True), ("a" * 248, True), ("a" * 249, False), ("é" * 124, True),
     ("é" * 125, False), ("😀" * 62, True), ("😀" * 256, False)],
)  # fmt: skip
def test_ids_too_long_for_amqp_are_hashed_and_stay_unique(value: str, fits: bool) -> None:
    message_id = amqp_id(value, ".result")
    assert len(message_id.encode()) <= 255
    assert (message_id == value + ".result") is fits
    if not fits:
        digest = hashlib.sha256(value.encode()).hexdigest()
        assert message_id == f"sha256:{digest}.result"
        assert amqp_id(value + "x", ".result") != message_id


def test_headers_over_64_kib_encoded_are_refused() -> None:
    check_headers(None)
    check_headers({"traceparent": "00-" + "a" * 50})
    # A long string encodes as 1 (key length) + key + 1 (type) + 4 (length) + value,
    # in a table that itself starts with its 4-byte length.
    fits = {"k": "v" * (MAX_HEADERS_BYTES - 4 - 1 - 1 - 1 - 4)}
    check_headers(fits)
    with pytest.raises(InvalidEvent, match="65,537 bytes encoded; the limit is 65,536 bytes"):
        check_headers({"k": fits["k"] + "v"})
