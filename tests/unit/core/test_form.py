"""Form bodies: how a template becomes fields, what a form cannot express, the encodings."""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

import pytest

from actionrelay.core.errors import PayloadError
from actionrelay.core.form import FormLists, form_fields, multipart, urlencoded
from actionrelay.core.payload import build_request
from tests.unit.support import define, rejection

FORM = "application/x-www-form-urlencoded"

FLATTENED: list[tuple[dict[str, Any], FormLists, list[tuple[str, str]]]] = [
    ({"To": "+33612345678", "Body": "Hi"}, "repeat", [("To", "+33612345678"), ("Body", "Hi")]),
    ({"n": 3, "x": 1.5, "on": True, "off": False}, "repeat", [
        ("n", "3"), ("x", "1.5"), ("on", "true"), ("off", "false"),
    ]),
    ({"unset": None}, "repeat", [("unset", "")]),
    ({"MediaUrl": ["a", "b"]}, "repeat", [("MediaUrl", "a"), ("MediaUrl", "b")]),
    ({"tag": ["a", "b"]}, "brackets", [("tag[]", "a"), ("tag[]", "b")]),
    ({"tag": ["a", "b"]}, "indexed", [("tag[0]", "a"), ("tag[1]", "b")]),
    ({"tag": []}, "repeat", []),
    ({"meta": {}}, "repeat", []),
    ({"metadata": {"plan": "pro", "seats": 5}}, "repeat", [
        ("metadata[plan]", "pro"), ("metadata[seats]", "5"),
    ]),
    ({"a": {"b": {"c": "deep"}}}, "repeat", [("a[b][c]", "deep")]),
    ({"items": [{"price": "p1", "quantity": 2}, {"price": "p2"}]}, "indexed", [
        ("items[0][price]", "p1"), ("items[0][quantity]", "2"), ("items[1][price]", "p2"),
    ]),
    ({"grid": [[1, 2], [3]]}, "indexed", [
        ("grid[0][0]", "1"), ("grid[0][1]", "2"), ("grid[1][0]", "3"),
    ]),
    ({"meta": {"tags": ["x", "y"]}}, "brackets", [("meta[tags][]", "x"), ("meta[tags][]", "y")]),
]  # fmt: skip


@pytest.mark.parametrize(("value", "lists", "fields"), FLATTENED)
def test_a_rendered_body_flattens_into_form_fields(
    value: dict[str, Any], lists: FormLists, fields: list[tuple[str, str]]
) -> None:
    assert form_fields(value, lists) == fields


@pytest.mark.parametrize("lists", ["repeat", "brackets"])
@pytest.mark.parametrize("value", [{"items": [{"a": 1}]}, {"m": {"grid": [[1]]}}])
def test_a_list_of_objects_or_lists_needs_indexed_names(
    value: dict[str, Any], lists: FormLists
) -> None:
    with pytest.raises(ValueError, match="use form_lists: indexed"):
        form_fields(value, lists)


def test_urlencoded_fields_decode_to_themselves() -> None:
    fields = [("To", "+33 6 12"), ("Body", "a&b=c%d é 日本"), ("meta[a]", "x/y?z#")]
    body = urlencoded(fields)
    assert body.startswith(b"To=%2B33+6+12&Body=a%26b%3Dc%25d+%C3%A9+")
    assert parse_qsl(body.decode("ascii"), strict_parsing=True) == fields


def _parts(body: bytes, content_type: str) -> list[Message]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    return list(message.iter_parts())


def test_multipart_fields_are_text_parts_named_as_the_fields() -> None:
    fields = [("to", "a@x.test"), ("to", "b@y.test"), ('odd"name\n', "line 1\r\nline 2")]
    body, content_type = multipart(fields)

    assert content_type.startswith("multipart/form-data; boundary=actionrelay-")
    parts = _parts(body, content_type)
    assert [p.get_param("name", header="content-disposition") for p in parts] == [
        "to",
        "to",
        "odd%22name%0A",
    ]
    assert [p.get_payload(decode=True) for p in parts] == [
        b"a@x.test",
        b"b@y.test",
        b"line 1\r\nline 2",
    ]
    assert multipart(fields) == (body, content_type)  # the same fields, the same body
    assert multipart(fields[:1])[1] != content_type


# --- actions with form bodies ---------------------------------------------------

TWILIO_BODY = {
    "To": {"$var": "phone", "type": "string"},
    "From": "+15005550006",
    "Body": {"$var": "text", "type": "string"},
    "MediaUrl": {"$var": "media", "type": "listString", "optional": True},
}


def test_a_form_action_sends_a_form_with_its_content_type() -> None:
    action = define(body_format="form", body=TWILIO_BODY)
    request = build_request(action, {"phone": "+33612345678", "text": "Hi!", "media": ["u1"]}, "e")

    assert request.headers["Content-Type"] == FORM
    assert request.body == b"To=%2B33612345678&From=%2B15005550006&Body=Hi%21&MediaUrl=u1"
    assert request.fields == [
        ("To", "+33612345678"),
        ("From", "+15005550006"),
        ("Body", "Hi!"),
        ("MediaUrl", "u1"),
    ]


def test_a_multipart_action_sends_multipart_with_its_boundary() -> None:
    action = define(body_format="multipart", body={"to": {"$var": "to", "type": "listString"}})
    request = build_request(action, {"to": ["a@x.test", "b@x.test"]}, "e")

    content_type = request.headers["Content-Type"]
    assert request.body is not None
    assert content_type.startswith("multipart/form-data; boundary=")
    assert [p.get_payload(decode=True) for p in _parts(request.body, content_type)] == [
        b"a@x.test",
        b"b@x.test",
    ]


def test_an_object_variable_that_a_form_cannot_express_is_a_validation_error() -> None:
    action = define(body_format="form", body={"meta": {"$var": "meta", "type": "object"}})

    with pytest.raises(PayloadError, match=r"action testAction: body field meta\[items\]: a list"):
        build_request(action, {"meta": {"items": [{"a": 1}]}}, "e")
    request = build_request(action, {"meta": {"plan": "pro"}}, "e")
    assert request.body == b"meta%5Bplan%5D=pro"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"body": ["a"]}, "body: a form body is a set of named fields: write an object"),
        ({"body": "text"}, "body: a form body is a set of named fields"),
        ({"body": {"$var": "t", "type": "string"}}, "body: a form body is a set of named fields"),
        ({"body": {"a": [{"b": 1}]}}, "body.a: a list of objects or lists cannot be sent"),
        ({"body": {"a": {"b": [[1]]}}}, r"body.a.b: a list of objects or lists cannot be sent"),
        ({"body": {"a": {"$var": "a", "type": "listObject"}}}, "body.a: a list of objects cannot"),
        (
            {"body": {"a": [{"$var": "a", "type": "object"}]}, "form_lists": "brackets"},
            "form_lists: brackets",
        ),
        ({"body": {"a[b]": 1}}, r"body.a\[b\]: '\[' and '\]' are not allowed"),
    ],
)
def test_a_template_a_form_cannot_express_is_refused_naming_the_field(
    fields: dict[str, Any], problem: str
) -> None:
    assert re.search(problem, rejection(body_format="form", **fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"body": {"items": [{"price": "p1"}]}, "form_lists": "indexed"},
        {"body": {"items": {"$var": "items", "type": "listObject"}}, "form_lists": "indexed"},
        {"body": {"$var": "payload", "type": "object"}},
        {"body": None},
    ],
)
def test_templates_a_form_can_express_are_accepted(fields: dict[str, Any]) -> None:
    define(body_format="form", **fields)


def test_form_lists_without_a_form_is_refused() -> None:
    assert "form_lists applies to body_format form or multipart" in rejection(
        form_lists="indexed", body={"a": [1]}
    )
