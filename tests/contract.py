"""docs/asyncapi.yaml as a checker: does a message match what the document promises?

Payloads are checked against the document's JSON Schemas (formats included);
the AMQP properties against ``x-amqp-properties``; sizes against ``x-max-bytes``
and nesting against ``x-max-depth``. The unit tests use it on tables of
events, and the integration harness on every event it sends and every result
and dead letter it reads (tests/integration/support.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import yaml
from pamqp import encode

DOCUMENT = Path(__file__).parents[1] / "docs" / "asyncapi.yaml"
PROPERTY_NAMES = (
    "content_type",
    "delivery_mode",
    "type",
    "message_id",
    "correlation_id",
    "reply_to",
)


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def _validator(ref: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of ``ref`` (a $ref into the document), refs resolved in the document."""
    root = {"$ref": ref["$ref"], "components": document()["components"]}
    return jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _schema_problems(ref: dict[str, Any], value: Any, where: str) -> list[str]:
    errors = _validator(ref).iter_errors(value)
    return [
        f"{where} {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors
    ]


def _message(name: str) -> dict[str, Any]:
    message: dict[str, Any] = document()["components"]["messages"][name]
    return message


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in ``body`` (read as text: no recursion limit)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in body.decode(errors="replace"):
        if in_string:
            in_string, escaped = (escaped or char != '"'), (not escaped and char == "\\")
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _header_problems(name: str, headers: Mapping[str, Any] | None) -> list[str]:
    spec = _message(name).get("headers", {})
    problems = []
    limit = spec.get("x-max-bytes")
    size = len(encode.field_table(dict(headers))) if headers else 0
    if limit is not None and size > limit:
        problems.append(f"headers are {size} bytes encoded, over x-max-bytes {limit}")
    for key, rule in spec.get("properties", {}).items():
        value = (headers or {}).get(key)
        if value is None:
            continue
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        validator = jsonschema.Draft202012Validator(rule)
        problems += [f"header {key}: {error.message}" for error in validator.iter_errors(value)]
    return problems


def _property_problems(name: str, properties: Mapping[str, Any]) -> list[str]:
    ref = _message(name)["x-amqp-properties"]
    present = {k: v for k, v in properties.items() if k in PROPERTY_NAMES and v is not None}
    problems = _schema_problems(ref, present, "property")
    schema = document()["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
    for key, rule in schema.get("properties", {}).items():
        value = present.get(key)
        limit = rule.get("x-max-bytes")
        if isinstance(value, str) and limit is not None and len(value.encode()) > limit:
            problems.append(f"property {key} is {len(value.encode())} bytes, over {limit}")
    return problems


def step_event_problems(
    body: bytes, properties: Mapping[str, Any], headers: Mapping[str, Any] | None
) -> list[str]:
    """Why the document rejects this step event; empty when it accepts it."""
    message = _message("StepEvent")
    problems = _header_problems("StepEvent", headers)
    problems += _property_problems("StepEvent", properties)
    if len(body) > message["x-max-bytes"]:
        return [*problems, f"body is {len(body)} bytes, over x-max-bytes {message['x-max-bytes']}"]
    if (depth := json_depth(body)) > message["x-max-depth"]:
        return [*problems, f"body nests {depth} levels, over x-max-depth {message['x-max-depth']}"]
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [*problems, f"body is not JSON: {exc}"]
    return problems + _schema_problems(message["payload"], payload, "payload")


def result_problems(
    body: bytes, properties: Mapping[str, Any], headers: Mapping[str, Any]
) -> list[str]:
    """Why a result event does not match the document."""
    message = _message("ActionResult")
    problems = _property_problems("ActionResult", properties)
    problems += _header_problems("ActionResult", headers)
    return problems + _schema_problems(message["payload"], orjson.loads(body), "payload")


def dead_letter_problems(
    body: bytes, properties: Mapping[str, Any], headers: Mapping[str, Any]
) -> list[str]:
    """Why a dead letter does not match the document."""
    problems = _property_problems("DeadLetter", properties)
    if "x-actionrelay-error-type" not in headers:
        # RabbitMQ's own, after the delivery limit: the document says only x-death is there.
        return problems if "x-death" in headers else [*problems, "no reason in the headers"]
    problems += _header_problems("DeadLetter", headers)
    if headers.get("x-actionrelay-error-type") != "invalid_event":
        payload = _message("DeadLetter")["payload"]["anyOf"][0]
        problems += _schema_problems(payload, orjson.loads(body), "payload")
    return problems
