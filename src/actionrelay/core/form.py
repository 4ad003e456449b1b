"""Form bodies: ``application/x-www-form-urlencoded`` and ``multipart/form-data``.

Pure: no I/O. A form is a flat list of (name, value) text pairs; a template is
flattened into it by these rules, checked when the action file loads:

- a top-level key is a field name; a nested object's keys go in brackets:
  ``{meta: {plan: pro}}`` -> ``meta[plan]=pro`` (Stripe-style);
- a list repeats its field, as ``form_lists`` says: ``repeat`` (default)
  ``MediaUrl=a&MediaUrl=b`` (Twilio), ``brackets`` ``tag[]=a&tag[]=b``, or
  ``indexed`` ``item[0]=a&item[1]=b``; an empty list sends nothing;
- a list of objects or of lists needs ``indexed``
  (``items[0][price]=p1``); with the other two it cannot be read back;
- ``true``/``false`` for booleans, numbers as JSON writes them, ``null`` as an
  empty value (``field=``; Stripe reads it as "unset").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlencode

import orjson

from actionrelay.core.template import Arr, Node, Obj, Var, element_type

FormLists = Literal["repeat", "brackets", "indexed"]
FORM = "application/x-www-form-urlencoded"
Fields = list[tuple[str, str]]


def _nested_list_problem(where: str, lists: FormLists, what: str) -> str:
    return (
        f"{where}: a list of {what} cannot be sent in a form with form_lists: {lists} "
        "(the receiver could not tell the items apart); use form_lists: indexed"
    )


def check_form_template(node: Node, lists: FormLists, where: str = "body") -> None:
    """Raise ValueError naming the field when a form cannot express ``node``."""
    if where == "body" and not isinstance(node, Obj):
        is_object_var = isinstance(node, Var) and node.spec.type == "object"
        if not is_object_var:
            raise ValueError("body: a form body is a set of named fields: write an object")
    if isinstance(node, Obj):
        for key, child in node.items:
            if "[" in key or "]" in key:
                raise ValueError(
                    f"{where}.{key}: '[' and ']' are not allowed in a form field name; "
                    "nest an object instead ({a: {b: 1}} is sent as a[b]=1)"
                )
            check_form_template(child, lists, f"{where}.{key}")
    elif isinstance(node, Arr):
        for index, child in enumerate(node.items):
            inner = isinstance(child, Obj | Arr) or (
                isinstance(child, Var) and _structured(child.spec.type)
            )
            if inner and lists != "indexed":
                raise ValueError(_nested_list_problem(where, lists, "objects or lists"))
            check_form_template(child, lists, f"{where}[{index}]")
    elif isinstance(node, Var) and node.spec.type == "listObject" and lists != "indexed":
        raise ValueError(_nested_list_problem(where, lists, "objects"))


def _structured(var_type: str) -> bool:
    return var_type == "object" or element_type(var_type) is not None


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def form_fields(value: dict[str, Any], lists: FormLists) -> Fields:
    """A rendered body as form fields; ValueError names a field a form cannot express."""
    return [pair for key, child in value.items() for pair in _flatten(key, child, lists)]


def _flatten(name: str, value: Any, lists: FormLists) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _flatten(f"{name}[{key}]", child, lists)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list) and lists != "indexed":
                raise ValueError(_nested_list_problem(name, lists, "objects or lists"))
            suffix = {"repeat": "", "brackets": "[]", "indexed": f"[{index}]"}[lists]
            yield from _flatten(name + suffix, item, lists)
    else:
        yield name, text(value)


def urlencoded(fields: Fields) -> bytes:
    """UTF-8, percent-encoded, a space as '+' (the WHATWG URL standard's form encoding)."""
    return urlencode(fields).encode("ascii")


def _quoted_name(name: str) -> str:
    # As browsers write it (WHATWG HTML, multipart/form-data encoding algorithm).
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart(fields: Fields) -> tuple[bytes, str]:
    """(body, Content-Type) of a ``multipart/form-data`` body of text parts (RFC 7578).

    The boundary is a digest of the parts, so it cannot occur in them and the
    same fields always give the same body.
    """
    parts = [
        (f'Content-Disposition: form-data; name="{_quoted_name(name)}"', value.encode())
        for name, value in fields
    ]
    digest = hashlib.sha256(orjson.dumps([[h, v.decode()] for h, v in parts])).hexdigest()
    boundary = f"actionrelay-{digest[:40]}"
    chunks = [
        f"--{boundary}\r\n{header}\r\n\r\n".encode() + value + b"\r\n" for header, value in parts
    ]
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
