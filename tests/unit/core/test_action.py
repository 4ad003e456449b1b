"""Action definitions: what a technical user may write, and what is refused at load."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from actionrelay.core.action import ActionDefinition
from tests.unit.support import define, rejection

TYPES_LIST = (
    "Input should be 'string', 'integer', 'decimal', 'boolean', 'dateTime', 'dateOnly', "
    "'object', 'listString', 'listInteger', 'listDecimal', 'listBoolean' or 'listObject'"
)

BAD_DEFINITIONS: list[tuple[dict[str, Any], str]] = [
    # name
    ({"name": "a" * 31}, "name: String should match pattern '^[A-Za-z0-9_]{1,30}$'"),
    ({"name": "send-sms"}, "name: String should match pattern"),
    ({"name": "send sms"}, "name: String should match pattern"),
    ({"name": "envoyéSms"}, "name: String should match pattern"),
    ({"name": ""}, "name: String should match pattern"),
    ({"name": 42}, "name: Input should be a valid string"),
    # method
    ({"method": "FETCH"}, "method: Input should be 'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'"),
    ({"method": "HEAD"}, "method: Input should be 'GET'"),
    # url
    ({"url": "api.example.com/v1"}, "url: Value error, must be an absolute http:// or https://"),
    ({"url": "/v1/messages"}, "url: Value error, must be an absolute http:// or https://"),
    ({"url": "ftp://api.example.com"}, "url: Value error, must be an absolute http:// or https://"),
    ({"url": "https:///v1"}, "url: Value error, must be an absolute http:// or https://"),
    ({"url": "https://api.example.com/v1?key=1"}, "url: Value error, must not carry a query"),
    ({"url": "https://api.example.com/v1#top"}, "url: Value error, must not carry a query"),
    # path
    ({"path": "{id}/send"}, "path: Value error, must start with '/'"),
    ({"path": "send"}, "path: Value error, must start with '/'"),
    ({"path": "/{id}?x=1"}, "path: Value error, must not contain '?' or '#'"),
    ({"path": "/{id}#top"}, "path: Value error, must not contain '?' or '#'"),
    ({"path": "/{id:>5}"}, "path: Value error, placeholder {id} must be a plain variable name"),
    ({"path": "/{0}"}, "path: Value error, placeholder {0} must be a plain variable name"),
    ({"path": "/{}"}, "path: Value error, placeholder {} must be a plain variable name"),
    ({"path": "/{a.b}"}, "path: Value error, placeholder {a.b} must be a plain variable name"),
    ({"path": "/{id\n}"}, "must be a plain variable name"),
    ({"path": "/{id"}, "path: Value error, expected '}' before end of string"),
    # body on a bodyless method
    ({"method": "GET", "body": {"a": 1}}, "GET sends no body; remove 'body' or use POST/PUT/PATCH"),
    ({"method": "delete", "body": []}, "DELETE sends no body"),
    # headers
    (
        {"headers": {"X Tenant": "a"}},
        "headers: Value error, header name 'X Tenant' is not a valid RFC 7230 token",
    ),
    ({"headers": {"X-Tenant:": "a"}}, "header name 'X-Tenant:' is not a valid RFC 7230 token"),
    ({"headers": {"X-Ténant": "a"}}, "header name 'X-Ténant' is not a valid RFC 7230 token"),
    ({"headers": {"": "a"}}, "header name '' is not a valid RFC 7230 token"),
    ({"headers": {"X-Tenant\n": "a"}}, "header name 'X-Tenant\\n' is not a valid RFC 7230 token"),
    ({"headers": {".hidden": "a"}}, "header name '.hidden' is not a valid RFC 7230 token"),
    ({"headers": {"$var": "a"}}, "header name '$var' is not a valid RFC 7230 token"),
    ({"headers": {"Content-Type": "text/xml"}}, "header Content-Type is set by actionrelay"),
    ({"headers": {"content-type": "text/xml"}}, "header content-type is set by actionrelay"),
    ({"headers": {"Idempotency-Key": "k"}}, "header Idempotency-Key is set by actionrelay"),
    ({"headers": {"Host": "evil.example"}}, "header Host is set by actionrelay"),
    ({"headers": {"Content-Length": "1"}}, "header Content-Length is set by actionrelay"),
    ({"headers": {"X-A": "a\r\nX-Evil: 1"}}, "header X-A: value contains control characters"),
    ({"headers": {"X-A": "a\n"}}, "header X-A: value contains control characters"),
    ({"headers": {"X-A": ["a", "b"]}}, "headers.X-A: expected a constant or {$var: name, type: …}"),
    ({"headers": {"X-A": None}}, "headers.X-A: expected a constant"),
    (
        {"headers": {"X-A": {"$var": "a", "type": "object"}}},
        "headers.X-A: type object cannot go in",
    ),
    # query
    (
        {"query": {"q": {"$var": "q", "type": "listObject"}}},
        "query.q: type listObject cannot go in a query",
    ),
    ({"query": {"q": ["a", "b"]}}, "query.q: expected a constant or {$var: name, type: …}"),
    (
        {"query": {"q": {"a": 1}}},
        "query.q: $var: Field required; a: Extra inputs are not permitted",
    ),
    # body field names
    ({"body": {"a.b": 1}}, "body: field name 'a.b' is not allowed"),
    ({"body": {"$ref": 1}}, "body: field name '$ref' is not allowed"),
    ({"body": {"meta": {"$x": 1}}}, "body.meta: field name '$x' is not allowed"),
    ({"body": {"items": [{"x.y": 1}]}}, "body.items[0]: field name 'x.y' is not allowed"),
    # placeholders
    ({"body": {"to": {"$var": "phone", "type": "strng"}}}, f"body.to: type: {TYPES_LIST}"),
    ({"query": {"q": {"$var": "q", "type": "int"}}}, f"query.q: type: {TYPES_LIST}"),
    ({"headers": {"X-A": {"$var": "a", "type": "bool"}}}, f"headers.X-A: type: {TYPES_LIST}"),
    ({"body": {"to": {"$var": "1phone"}}}, "body.to: $var: String should match pattern"),
    (
        {"body": {"to": {"$var": "phone", "optinal": True}}},
        "body.to: optinal: Extra inputs are not permitted",
    ),
    (
        {
            "query": {"phone": {"$var": "phone", "type": "integer"}},
            "body": {"to": {"$var": "phone", "type": "string"}},
        },
        "variable 'phone' is declared as integer and as string",
    ),
    (
        {"path": "/{id}", "body": {"a": {"$var": "id", "type": "integer"}, "b": {"$var": "id"}}},
        "variable 'id' is declared as integer and as string",
    ),
    # timeout_seconds
    ({"timeout_seconds": 0}, "timeout_seconds: Input should be greater than or equal to 1"),
    ({"timeout_seconds": 0.5}, "timeout_seconds: Input should be greater than or equal to 1"),
    ({"timeout_seconds": -1}, "timeout_seconds: Input should be greater than or equal to 1"),
    ({"timeout_seconds": 31}, "timeout_seconds: Input should be less than or equal to 30"),
    ({"timeout_seconds": "fast"}, "timeout_seconds: Input should be a valid number"),
    # other fields and typos
    ({"version": 0}, "version: Input should be greater than or equal to 1"),
    ({"timout_seconds": 5}, "timout_seconds: Extra inputs are not permitted"),
    ({"header": {"X-A": "1"}}, "header: Extra inputs are not permitted"),
    ({"response": {"field": ["id"]}}, "response.field: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("fields", "problem"), BAD_DEFINITIONS)
def test_a_bad_definition_is_refused_naming_the_field(fields: dict[str, Any], problem: str) -> None:
    assert problem in rejection(**fields)


def test_name_and_url_are_required() -> None:
    with pytest.raises(ValidationError) as caught:
        ActionDefinition.model_validate({})
    assert {error["loc"] for error in caught.value.errors()} == {("name",), ("url",)}


GOOD_DEFINITIONS: list[dict[str, Any]] = [
    {"name": "a" * 30},
    {"name": "send_SMS_2"},
    {"method": "get"},
    {"method": "patch", "body": {"a": 1}},
    {"url": "http://127.0.0.1:8080/"},
    {"url": "https://user@api.example.com:8443/v1/"},
    {"timeout_seconds": 1},
    {"timeout_seconds": 30},
    {"timeout_seconds": 2.5},
    {"headers": {"X-Api_Version.2": "2", "Authorization": "Bearer t", "Accept": "text/plain"}},
    {"headers": {"X-A": "a\tb é"}},
    {"method": "GET", "body": None},
    {"body": {"$var": "payload", "type": "object"}},
    {"body": [1, "a", None, True, 1.5, {"k": "v"}]},
    {"body": "plain"},
]


@pytest.mark.parametrize("fields", GOOD_DEFINITIONS)
def test_a_good_definition_is_accepted(fields: dict[str, Any]) -> None:
    define(**fields)


def test_the_method_is_upper_cased() -> None:
    assert define(method="delete").method == "DELETE"


def test_variables_are_collected_from_path_query_headers_and_body() -> None:
    action = define(
        path="/{country}/{id}",
        query={"locale": {"$var": "locale", "optional": True}, "source": "journeys"},
        headers={"X-Tenant": {"$var": "tenant"}},
        body={"id": {"$var": "id", "type": "integer"}, "tags": [{"$var": "tag"}]},
    )
    types = {name: spec.type for name, spec in action.variables.items()}
    assert types == {
        "country": "string",
        "locale": "string",
        "tenant": "string",
        "id": "integer",
        "tag": "string",
    }
    assert action.path_vars == ("country", "id")
