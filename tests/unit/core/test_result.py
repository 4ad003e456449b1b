"""Turning the API's answer into what the result event reports."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from actionrelay.core.errors import HttpStatusError
from actionrelay.core.event import StepEvent, StepRecord
from actionrelay.core.result import (
    EXCERPT_CHARS,
    HttpResponse,
    check_status,
    excerpt,
    kept_response,
    success_result,
)
from actionrelay.core.secret import Redactor
from tests.unit.support import define


def _response(status: int, body: bytes = b"") -> HttpResponse:
    return HttpResponse(
        status=status,
        headers=CIMultiDictProxy(CIMultiDict()),
        body=body,
        truncated=False,
        latency_ms=41.73,
    )


ANSWER = {"messageId": "m-1", "status": "queued", "cost": 0.05, "debug": {"node": 3}}

KEPT: list[tuple[list[str] | None, bytes, Any]] = [
    (None, orjson.dumps(ANSWER), ANSWER),
    (["messageId", "status"], orjson.dumps(ANSWER), {"messageId": "m-1", "status": "queued"}),
    (["messageId", "absent"], orjson.dumps(ANSWER), {"messageId": "m-1"}),
    ([], orjson.dumps(ANSWER), {}),
    (None, b"[1, 2]", [1, 2]),
    (["id"], b"[1, 2]", [1, 2]),
    (None, b'"ok"', "ok"),
    (None, b"null", None),
    (None, b"", None),
    (["id"], b"", None),
    (None, b"<html>Created</html>", None),
    (["id"], b"OK", None),
    (None, b"\xff\xfe", None),
]


@pytest.mark.parametrize(("fields", "body", "kept"), KEPT)
def test_kept_response(fields: list[str] | None, body: bytes, kept: Any) -> None:
    action = define(response={"fields": fields})
    assert kept_response(action, body) == kept


EXCERPTS: list[tuple[bytes, int, str]] = [
    (b"", EXCERPT_CHARS, ""),
    (b'{"error": "bad phone"}', EXCERPT_CHARS, '{"error": "bad phone"}'),
    (b"  line one\r\n\tline two  \n", EXCERPT_CHARS, "line one line two"),
    (b"x" * EXCERPT_CHARS, EXCERPT_CHARS, "x" * EXCERPT_CHARS),
    (b"x" * (EXCERPT_CHARS + 1), EXCERPT_CHARS, "x" * (EXCERPT_CHARS - 1) + "…"),
    (b"x" * 100_000, EXCERPT_CHARS, "x" * (EXCERPT_CHARS - 1) + "…"),
    (b"abcdefghij", 5, "abcd…"),
    ("é".encode() * 10, 5, "éééé…"),
    (b"ok \xff", EXCERPT_CHARS, "ok \ufffd"),
]


@pytest.mark.parametrize(("body", "limit", "text"), EXCERPTS)
def test_excerpt_is_short_and_printable(body: bytes, limit: int, text: str) -> None:
    assert excerpt(body, limit) == text


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_a_2xx_answer_is_a_success(status: int) -> None:
    check_status(define(), _response(status, b"{}"), "api.example.com")


@pytest.mark.parametrize("status", [100, 199, 300, 301, 304, 400, 404, 409, 422, 429, 500, 503])
def test_any_other_answer_is_an_http_error(status: int) -> None:
    with pytest.raises(HttpStatusError) as caught:
        check_status(define(), _response(status, b'{"error":\n "nope"}'), "api.example.com")
    error = caught.value
    assert error.status_code == f"http_{status}"
    assert error.http_status == status
    assert error.error_type == "http_error"
    assert error.body_excerpt == '{"error": "nope"}'
    assert error.message == (
        f'action testAction: api.example.com answered HTTP {status}: {{"error": "nope"}}'
    )


def test_an_error_without_a_body_has_a_message_without_an_excerpt() -> None:
    with pytest.raises(HttpStatusError) as caught:
        check_status(define(), _response(502), "api.example.com")
    assert caught.value.message == "action testAction: api.example.com answered HTTP 502"
    assert caught.value.body_excerpt == ""


def test_a_success_result_reports_the_status_and_the_kept_fields() -> None:
    action = define(name="sendSms", version=3, response={"fields": ["messageId", "status"]})
    event = StepEvent(
        event_id="e-9f2", action="sendSms", journey={"id": "welcome"}, profile_id="p-42"
    )
    result = success_result(
        StepRecord.of(event), action, _response(201, orjson.dumps(ANSWER)), attempts=1
    )
    assert result.status == "success"
    assert result.status_code == "http_201"
    assert result.http_status == 201
    assert result.action_version == 3
    assert result.journey == {"id": "welcome"}
    assert result.response == {"messageId": "m-1", "status": "queued"}
    assert result.latency_ms == 41.7
    assert result.error is None


def test_an_excerpt_is_masked_before_it_is_cut() -> None:
    secret = "s3cret-" + "x" * 40
    body = ("a" * 280 + secret + " tail").encode()  # the secret straddles the cut at 300
    cut = excerpt(body, mask=Redactor([secret]).mask)
    assert "s3cret" not in cut
    assert cut == "a" * 280 + "*** tail"
