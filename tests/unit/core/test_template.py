"""Typed placeholders in a JSON body: what is accepted, what is refused, what is sent."""

from __future__ import annotations

import math
from typing import Any

import pytest

from actionrelay.core.errors import PayloadError
from actionrelay.core.payload import build_request
from tests.unit.support import define, sent_json


def _send(var: dict[str, Any], params: dict[str, Any]) -> Any:
    """The JSON body sent by an action whose body is ``{"v": <var>}``."""
    action = define(body={"v": {"$var": "v", **var}})
    return sent_json(build_request(action, params, "e-1"))


ACCEPTED: list[tuple[str, Any]] = [
    ("string", "hello"),
    ("string", ""),
    ("string", "héllo 日本 😀"),
    ("integer", 0),
    ("integer", -42),
    ("integer", 2**53),
    ("decimal", 1.5),
    ("decimal", -0.25),
    ("decimal", 7),  # integer -> decimal is the one accepted widening
    ("boolean", True),
    ("boolean", False),
    ("dateTime", "2026-11-27T12:00:00Z"),
    ("dateTime", "2026-11-27T12:00:00.123+02:00"),
    ("dateTime", "2026-11-27T12:00:00"),
    ("dateOnly", "2026-11-27"),
    ("dateOnly", "2024-02-29"),
    ("object", {}),
    ("object", {"street": "1 rue X", "geo": {"lat": 48.8, "lon": 2.3}, "note": None}),
    ("listString", ["a", "b"]),
    ("listString", []),
    ("listInteger", [1, -2, 3]),
    ("listDecimal", [1, 2.5]),
    ("listBoolean", [True, False]),
    ("listObject", [{"sku": "A1", "qty": 2}, {}]),
]


@pytest.mark.parametrize(("var_type", "value"), ACCEPTED)
def test_a_value_of_the_declared_type_is_sent_unchanged(var_type: str, value: Any) -> None:
    assert _send({"type": var_type}, {"v": value}) == {"v": value}


def test_an_integer_for_a_decimal_stays_an_integer_in_the_json() -> None:
    action = define(body={"v": {"$var": "v", "type": "decimal"}})
    assert build_request(action, {"v": 7}, "e-1").body == b'{"v":7}'


DATE_TIME = "an ISO 8601 date-time string such as 2026-11-27T12:00:00Z"
DATE = "an ISO 8601 date string such as 2026-11-27"

REJECTED: list[tuple[str, Any, str]] = [
    ("string", 1, "a string, got integer"),
    ("string", True, "a string, got boolean"),
    ("string", ["a"], "a string, got array"),
    ("string", {"a": "b"}, "a string, got object"),
    ("integer", "1", "an integer, got string"),
    ("integer", True, "an integer, got boolean"),
    ("integer", 1.0, "an integer, got number"),
    ("integer", 1.5, "an integer, got number"),
    ("decimal", "1.5", "a number, got string"),
    ("decimal", True, "a number, got boolean"),
    ("decimal", math.inf, "a number, got number"),
    ("boolean", 1, "true or false, got integer"),
    ("boolean", 0, "true or false, got integer"),
    ("boolean", "true", "true or false, got string"),
    ("dateTime", "2026-11-27", f"{DATE_TIME}, got string"),
    ("dateTime", "2026-11-27T25:00:00Z", f"{DATE_TIME}, got string"),
    ("dateTime", "yesterday", f"{DATE_TIME}, got string"),
    ("dateTime", 1764244800, f"{DATE_TIME}, got integer"),
    ("dateOnly", "2026-11-27T12:00:00Z", f"{DATE}, got string"),
    ("dateOnly", "2026-02-30", f"{DATE}, got string"),
    ("dateOnly", "27/11/2026", f"{DATE}, got string"),
    ("dateOnly", 20261127, f"{DATE}, got integer"),
    ("object", [], "a JSON object, got array"),
    ("object", "{}", "a JSON object, got string"),
    ("listString", "a", "a list of string values, got string"),
    ("listString", ["a", 1], "a list of string values (item 1 is integer), got array"),
    ("listInteger", [1, "2"], "a list of integer values (item 1 is string), got array"),
    ("listInteger", [True], "a list of integer values (item 0 is boolean), got array"),
    ("listInteger", [1.0], "a list of integer values (item 0 is number), got array"),
    ("listDecimal", ["1.5"], "a list of decimal values (item 0 is string), got array"),
    ("listBoolean", [1], "a list of boolean values (item 0 is integer), got array"),
    ("listObject", [[]], "a list of object values (item 0 is array), got array"),
    ("listObject", {"a": 1}, "a list of object values, got object"),
]


@pytest.mark.parametrize(("var_type", "value", "expected"), REJECTED)
def test_a_value_of_another_type_is_refused_not_coerced(
    var_type: str, value: Any, expected: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        _send({"type": var_type}, {"v": value})
    assert str(caught.value) == f"variable 'v' for action testAction must be {expected}"


def test_a_refused_list_names_the_item_as_the_author_wrote_it() -> None:
    with pytest.raises(PayloadError, match=r"item 2 is integer"):
        _send({"type": "listString"}, {"v": ["a", None, 3]})


ABSENCE: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ({"optional": True}, {}, {}),
    ({"optional": True}, {"v": None}, {}),
    ({"nullable": True}, {}, {"v": None}),
    ({"nullable": True}, {"v": None}, {"v": None}),
    ({"optional": True, "nullable": True}, {}, {"v": None}),
    ({"optional": True, "nullable": True}, {"v": "x"}, {"v": "x"}),
    ({"optional": True, "type": "listString"}, {}, {}),
    ({"optional": True, "type": "object"}, {}, {}),
]


@pytest.mark.parametrize(("flags", "params", "body"), ABSENCE)
def test_optional_is_omitted_and_nullable_is_sent_as_null(
    flags: dict[str, Any], params: dict[str, Any], body: dict[str, Any]
) -> None:
    assert _send(flags, params) == body


@pytest.mark.parametrize("params", [{}, {"v": None}, {"other": "x"}])
def test_a_required_variable_that_is_missing_or_null_is_refused(params: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as caught:
        _send({"type": "string"}, params)
    assert str(caught.value) == "missing variable 'v' for action testAction"


LIST_NULLS: list[tuple[Any, dict[str, Any], Any]] = [
    ({"$var": "v", "type": "listString"}, {"v": ["a", None, "b"]}, ["a", "b"]),
    ({"$var": "v", "type": "listInteger"}, {"v": [None, None]}, []),
    ({"$var": "v", "type": "listObject"}, {"v": [None, {"a": 1}]}, [{"a": 1}]),
    ([1, None, 2], {}, [1, 2]),
    (["a", [None, "b"], None], {}, ["a", ["b"]]),
    (
        [
            {"$var": "a", "type": "string"},
            {"$var": "b", "type": "string", "optional": True},
            {"$var": "c", "type": "string", "nullable": True},
        ],
        {"a": "x"},
        ["x"],
    ),
]


@pytest.mark.parametrize(("template", "params", "sent"), LIST_NULLS)
def test_nulls_inside_lists_are_dropped(template: Any, params: dict[str, Any], sent: Any) -> None:
    action = define(body={"v": template})
    assert sent_json(build_request(action, params, "e-1")) == {"v": sent}


def test_null_constants_outside_lists_are_kept() -> None:
    action = define(body={"a": None, "b": {"c": None}})
    assert sent_json(build_request(action, {}, "e-1")) == {"a": None, "b": {"c": None}}


def test_every_problem_is_reported_in_one_error_naming_variable_and_action() -> None:
    action = define(
        name="sendSms",
        path="/{country}/send",
        query={"locale": {"$var": "locale", "type": "string"}},
        headers={"X-Tenant": {"$var": "tenant", "type": "string"}},
        body={
            "to": {"$var": "phone", "type": "string"},
            "text": {"$var": "text", "type": "string"},
            "meta": {"priority": {"$var": "priority", "type": "integer", "optional": True}},
        },
    )
    params = {"text": 42, "locale": "fr", "priority": "high"}
    with pytest.raises(PayloadError) as caught:
        build_request(action, params, "e-1")
    assert str(caught.value).split("; ") == [
        "missing variable 'country' for action sendSms",
        "missing variable 'tenant' for action sendSms",
        "missing variable 'phone' for action sendSms",
        "variable 'text' for action sendSms must be a string, got integer",
        "variable 'priority' for action sendSms must be an integer, got string",
    ]
    assert caught.value.status_code == "invalid"
    assert caught.value.error_type == "validation"


def test_a_body_that_is_one_placeholder_is_sent_whole() -> None:
    action = define(body={"$var": "contact", "type": "object"})
    contact = {"email": "a@example.com", "tags": ["x"]}
    assert sent_json(build_request(action, {"contact": contact}, "e-1")) == contact


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "missing variable 'contact' for action testAction"),
        ({"contact": 1}, "variable 'contact' for action testAction must be a JSON object"),
    ],
)
def test_a_body_that_is_one_bad_placeholder_is_a_payload_error(
    params: dict[str, Any], problem: str
) -> None:
    action = define(body={"$var": "contact", "type": "object"})
    with pytest.raises(PayloadError, match=problem):
        build_request(action, params, "e-1")


def test_a_body_that_is_one_missing_optional_placeholder_is_not_sent() -> None:
    action = define(body={"$var": "contact", "type": "object", "optional": True})
    assert build_request(action, {}, "e-1").body is None
