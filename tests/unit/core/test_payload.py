"""The HTTP request built for one step event: URL, query, headers and body."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from actionrelay.core.errors import PayloadError
from actionrelay.core.payload import build_request
from tests.unit.support import define, sent_json


def _url(action_fields: dict[str, Any], params: dict[str, Any]) -> str:
    return str(build_request(define(**action_fields), params, "e-1").url)


PATH_SEGMENTS: list[tuple[Any, str]] = [
    ("fr", "fr"),
    ("a/b", "a%2Fb"),
    ("../x", "..%2Fx"),
    ("x?y#z", "x%3Fy%23z"),
    ("a b", "a%20b"),
    ("100%", "100%25"),
    ("a+b&c=d;e", "a%2Bb%26c%3Dd%3Be"),
    ("é", "%C3%A9"),
    ("日本", "%E6%97%A5%E6%9C%AC"),
    ("~user_1.-", "~user_1.-"),
    ("...", "..."),
    (42, "42"),
    (-7, "-7"),
]


@pytest.mark.parametrize(("value", "segment"), PATH_SEGMENTS)
def test_a_path_variable_is_percent_encoded_as_one_segment(value: Any, segment: str) -> None:
    url = _url({"path": "/{id}/send"}, {"id": value})
    assert url == f"https://api.example.com/v1/{segment}/send"


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://api.example.com", "/{id}", "https://api.example.com/x"),
        ("https://api.example.com/", "/{id}", "https://api.example.com/x"),
        ("https://api.example.com/v1/", "/{id}", "https://api.example.com/v1/x"),
        ("http://127.0.0.1:8080/crm", "/c/{id}/{id}", "http://127.0.0.1:8080/crm/c/x/x"),
        ("https://api.example.com/v1", "/static", "https://api.example.com/v1/static"),
    ],
)
def test_the_path_is_appended_to_the_static_url(base: str, path: str, expected: str) -> None:
    assert _url({"url": base, "path": path}, {"id": "x"}) == expected


def test_an_integer_path_variable_declared_in_the_body_is_accepted() -> None:
    action = define(path="/{id}", body={"id": {"$var": "id", "type": "integer"}})
    request = build_request(action, {"id": 5}, "e-1")
    assert str(request.url) == "https://api.example.com/v1/5"
    assert sent_json(request) == {"id": 5}


PATH_REJECTED: list[tuple[dict[str, Any], str]] = [
    ({}, "missing variable 'id' for action testAction"),
    ({"id": None}, "missing variable 'id' for action testAction"),
    ({"id": ""}, "path variable 'id' for action testAction must not be ''"),
    ({"id": "."}, "path variable 'id' for action testAction must not be '.'"),
    ({"id": ".."}, "path variable 'id' for action testAction must not be '..'"),
    ({"id": True}, "path variable 'id' for action testAction must be a string or integer"),
    ({"id": 1.5}, "path variable 'id' for action testAction must be a string or integer"),
    ({"id": ["a"]}, "path variable 'id' for action testAction must be a string or integer"),
    ({"id": {"a": 1}}, "path variable 'id' for action testAction must be a string or integer"),
]


@pytest.mark.parametrize(("params", "problem"), PATH_REJECTED)
def test_a_path_variable_that_cannot_be_one_segment_is_refused(
    params: dict[str, Any], problem: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        build_request(define(path="/{id}/send"), params, "e-1")
    assert str(caught.value) == problem


QUERY = {
    "source": "journeys",
    "flag": True,
    "off": False,
    "n": 3,
    "ratio": 0.5,
    "locale": {"$var": "locale", "type": "string", "optional": True},
    "ids": {"$var": "ids", "type": "listInteger", "optional": True},
    "vip": {"$var": "vip", "type": "boolean", "optional": True},
    "since": {"$var": "since", "type": "dateTime", "optional": True, "nullable": True},
}
CONSTANTS = [
    ("source", "journeys"),
    ("flag", "true"),
    ("off", "false"),
    ("n", "3"),
    ("ratio", "0.5"),
]


@pytest.mark.parametrize(
    ("params", "added"),
    [
        ({}, []),
        ({"locale": None, "ids": None, "since": None}, []),
        ({"locale": "fr-FR"}, [("locale", "fr-FR")]),
        ({"ids": [1, None, 2]}, [("ids", "1"), ("ids", "2")]),
        ({"ids": []}, []),
        ({"vip": True}, [("vip", "true")]),
        ({"vip": False}, [("vip", "false")]),
        ({"locale": "a&b=c d+e/é#?"}, [("locale", "a&b=c d+e/é#?")]),
        ({"since": "2026-11-27T12:00:00+02:00"}, [("since", "2026-11-27T12:00:00+02:00")]),
    ],
)
def test_query_constants_and_variables(
    params: dict[str, Any], added: list[tuple[str, str]]
) -> None:
    url = _url({"query": QUERY}, params)
    # Parse the URL as it goes on the wire: what the API decodes is what was meant.
    assert list(URL(url).query.items()) == CONSTANTS + added


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "missing variable 'n' for action testAction"),
        ({"n": "3"}, "variable 'n' for action testAction must be an integer, got string"),
        ({"n": [1]}, "variable 'n' for action testAction must be an integer, got array"),
    ],
)
def test_a_bad_query_variable_is_refused(params: dict[str, Any], problem: str) -> None:
    action = define(query={"n": {"$var": "n", "type": "integer"}})
    with pytest.raises(PayloadError) as caught:
        build_request(action, params, "e-1")
    assert str(caught.value) == problem


def test_every_request_carries_the_default_headers() -> None:
    headers = build_request(define(), {}, "e-9f2").headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["Idempotency-Key"] == "e-9f2"
    assert "actionrelay" in headers["User-Agent"]


HEADERS: list[tuple[Any, dict[str, Any], str | None]] = [
    ("2", {}, "2"),
    (2, {}, "2"),
    (True, {}, "true"),
    ("Bearer abc def", {}, "Bearer abc def"),
    ({"$var": "h", "type": "string"}, {"h": "acme"}, "acme"),
    ({"$var": "h", "type": "string"}, {"h": "a\tb"}, "a\tb"),
    ({"$var": "h", "type": "integer"}, {"h": 7}, "7"),
    ({"$var": "h", "type": "boolean"}, {"h": False}, "false"),
    ({"$var": "h", "type": "decimal"}, {"h": 1.5}, "1.5"),
    ({"$var": "h", "type": "listString"}, {"h": ["a", None, "b"]}, "a,b"),
    ({"$var": "h", "type": "string", "optional": True}, {}, None),
    ({"$var": "h", "type": "string", "nullable": True}, {"h": None}, None),
]


@pytest.mark.parametrize(("header", "params", "sent"), HEADERS)
def test_header_constants_and_variables(
    header: Any, params: dict[str, Any], sent: str | None
) -> None:
    headers = build_request(define(headers={"X-Custom": header}), params, "e-1").headers
    assert headers.get("X-Custom") == sent


@pytest.mark.parametrize(
    "value", ["acme\r\nX-Evil: 1", "acme\nX-Evil: 1", "acme\rb", "acme\n", "\r\n", "a\x00b"]
)
def test_a_variable_header_value_with_control_characters_is_refused(value: str) -> None:
    action = define(headers={"X-Tenant": {"$var": "tenant", "type": "string"}})
    with pytest.raises(PayloadError) as caught:
        build_request(action, {"tenant": value}, "e-1")
    assert str(caught.value) == (
        "header X-Tenant for action testAction: value of variable 'tenant' "
        "contains control characters (CR, LF, …)"
    )


def test_a_missing_header_variable_is_refused() -> None:
    action = define(headers={"X-Tenant": {"$var": "tenant", "type": "string"}})
    with pytest.raises(PayloadError, match=r"^missing variable 'tenant' for action testAction$"):
        build_request(action, {}, "e-1")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_send_no_body(method: str) -> None:
    action = define(method=method, path="/{id}", query={"q": {"$var": "q", "type": "string"}})
    request = build_request(action, {"id": "x", "q": "y"}, "e-1")
    assert request.method == method
    assert request.body is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_methods_with_a_body_send_it(method: str) -> None:
    request = build_request(define(method=method, body={"a": 1}), {}, "e-1")
    assert request.method == method
    assert request.body == b'{"a":1}'


def test_an_action_without_a_body_sends_none() -> None:
    assert build_request(define(), {}, "e-1").body is None


def test_the_rendered_body_is_exactly_the_template_filled_in() -> None:
    action = define(
        body={
            "to": {"$var": "phone", "type": "string"},
            "count": {"$var": "count", "type": "integer"},
            "amount": {"$var": "amount", "type": "decimal"},
            "optIn": {"$var": "optIn", "type": "boolean"},
            "at": {"$var": "at", "type": "dateTime"},
            "day": {"$var": "day", "type": "dateOnly"},
            "address": {"$var": "address", "type": "object"},
            "tags": {"$var": "tags", "type": "listString"},
            "missing": {"$var": "missing", "type": "string", "optional": True},
            "meta": {
                "channel": "sms",
                "version": 2,
                "ratio": 0.5,
                "enabled": False,
                "nothing": None,
                "list": ["a", 1, None, {"k": {"$var": "count", "type": "integer"}}],
                "priority": {"$var": "priority", "type": "integer", "nullable": True},
            },
        }
    )
    params = {
        "phone": "+33612345678",
        "count": 3,
        "amount": 9.99,
        "optIn": True,
        "at": "2026-11-27T12:00:00Z",
        "day": "2026-11-27",
        "address": {"city": "Paris"},
        "tags": ["new", None],
        "unused": "ignored",
    }
    assert sent_json(build_request(action, params, "e-1")) == {
        "to": "+33612345678",
        "count": 3,
        "amount": 9.99,
        "optIn": True,
        "at": "2026-11-27T12:00:00Z",
        "day": "2026-11-27",
        "address": {"city": "Paris"},
        "tags": ["new"],
        "meta": {
            "channel": "sms",
            "version": 2,
            "ratio": 0.5,
            "enabled": False,
            "nothing": None,
            "list": ["a", 1, {"k": 3}],
            "priority": None,
        },
    }
