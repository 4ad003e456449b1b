"""docs/asyncapi.yaml: generated from the models, current, valid AsyncAPI 3.1, and
saying of every event what the worker does with it."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

import actionrelay
from actionrelay.cli.asyncapi import document, render
from actionrelay.core.errors import InvalidEvent, StepFailure
from actionrelay.core.event import (
    MAX_EVENT_BYTES,
    MAX_HEADERS_BYTES,
    MAX_ID_LENGTH,
    MAX_JSON_DEPTH,
    check_headers,
    parse_step_event,
)
from tests.contract import step_event_problems

DOC = Path(__file__).parents[3] / "docs" / "asyncapi.yaml"


def test_document_in_docs_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRELAY_REQUEST_QUEUE", "not.the.default")  # must not leak in
    assert DOC.read_text() == render(), "run: actionrelay asyncapi > docs/asyncapi.yaml"


def test_every_reference_resolves() -> None:
    doc = document()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(doc):
        target: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict)
            assert part in target, f"unresolved {ref}"
            target = target[part]


def test_schemas_describe_the_contract() -> None:
    schemas = yaml.safe_load(render())["components"]["schemas"]
    assert schemas["StepEvent"]["required"] == ["event_id", "action"]
    status = schemas["ActionResult"]["properties"]["status"]
    assert set(status["enum"]) == {"success", "error", "timedout", "invalid", "capped"}


SPEC = Path(__file__).parents[2] / "schemas" / "asyncapi-3.1.0.json"


def spec_problems(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(orjson.loads(SPEC.read_bytes()))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_document_is_valid_asyncapi_3_1() -> None:
    doc = yaml.safe_load(render())
    assert doc["asyncapi"] == "3.1.0"
    assert spec_problems(doc) == []
    doc["operations"]["consumeStepEvents"]["action"] = "consume"  # the check can fail
    assert spec_problems(doc) != []


def test_reply_to_and_correlation_are_modelled_as_the_worker_uses_them() -> None:
    doc = document()
    reply = doc["operations"]["consumeStepEvents"]["reply"]
    assert reply["channel"] == {"$ref": "#/channels/replies"}
    assert doc["channels"]["replies"]["address"] is None
    for name in ("StepEvent", "ActionResult"):
        message = doc["components"]["messages"][name]
        assert message["correlationId"]["location"] == "$message.payload#/event_id"
    properties = doc["components"]["schemas"]["StepEventProperties"]["properties"]
    assert set(properties) >= {"reply_to", "correlation_id", "message_id"}


def test_every_failure_the_worker_can_report_is_in_the_document() -> None:
    """Every StepFailure's error_type, wherever it is defined."""
    for module in pkgutil.iter_modules(actionrelay.__path__):
        if module.name != "__main__":
            importlib.import_module(f"actionrelay.{module.name}")
    kinds = {cls.error_type for cls in all_subclasses(StepFailure)} | {StepFailure.error_type}
    doc = document()
    headers = doc["components"]["messages"]["DeadLetter"]["headers"]["properties"]
    assert kinds == set(headers["x-actionrelay-error-type"]["enum"])
    result_types = doc["components"]["schemas"]["ResultError"]["properties"]["type"]["enum"]
    assert kinds - {"result_unpublishable"} == set(result_types)


def all_subclasses(cls: type[StepFailure]) -> set[type[StepFailure]]:
    found: set[type[StepFailure]] = set(cls.__subclasses__())
    return found | {sub for child in found for sub in all_subclasses(child)}


def test_the_limits_the_worker_enforces_are_in_the_document() -> None:
    step = document()["components"]["messages"]["StepEvent"]
    assert step["x-max-bytes"] == MAX_EVENT_BYTES
    assert step["x-max-depth"] == MAX_JSON_DEPTH
    assert step["headers"]["x-max-bytes"] == MAX_HEADERS_BYTES
    event_id = document()["components"]["schemas"]["StepEvent"]["properties"]["event_id"]
    assert (event_id["maxLength"], event_id["minLength"]) == (MAX_ID_LENGTH, 1)


def event(**fields: Any) -> bytes:
    return orjson.dumps({"event_id": "e-1", "action": "notify", **fields})


def nested(depth: int) -> bytes:
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return f'{{"event_id": "e", "action": "a", "params": {{"deep": {inner}}}}}'.encode()


DEADLINES = (
    "2026-11-27T12:00:30Z", "2026-11-27T12:00:30.25+01:00", "2026-11-27t12:00:30z",
    "2026-11-27T23:59:60Z", "2026-11-27T12:00Z", "2026-11-27T12:00:30", 1764244800,
    "2026-02-30T12:00:30Z", "2026-11-27 12:00:30Z", None,
)  # fmt: skip
EVENTS: list[tuple[str, bytes, dict[str, Any] | None]] = [
    ("minimal", event(), None),
    ("longest id", event(event_id="\U0001f600" * 256), None),
    ("id too long", event(event_id="a" * 257), None),
    ("empty id", event(event_id=""), None),
    ("control character", event(event_id="a\nb"), None),
    ("action too long", event(action="é" * 257), None),
    ("params not an object", event(params=[1]), None),
    ("not JSON", b"{nope", None),
    ("a JSON list", b"[]", None),
    ("unknown keys", event(extra={"x": 1}), None),
    ("1 MiB", event(params={"pad": "p" * (MAX_EVENT_BYTES - 65)}), None),
    ("1 MiB + 1", event(params={"pad": "p" * (MAX_EVENT_BYTES - 64)}), None),
    ("1,024 levels", nested(1024), None),
    ("1,025 levels", nested(1025), None),
    ("headers of 64 KiB", event(), {"k": "v" * (MAX_HEADERS_BYTES - 11)}),
    ("headers of 64 KiB + 1", event(), {"k": "v" * (MAX_HEADERS_BYTES - 10)}),
    *[(f"deadline {value!r}", event(deadline=value), None) for value in DEADLINES],
]


@pytest.mark.parametrize(("case", "body", "headers"), EVENTS, ids=[case for case, *_ in EVENTS])
def test_the_document_and_the_worker_accept_and_refuse_the_same_events(
    case: str, body: bytes, headers: dict[str, Any] | None
) -> None:
    problems = step_event_problems(body, {}, headers)
    refused = worker_refusal(body, headers)
    assert bool(problems) == bool(refused), f"{case}: document {problems}, worker {refused!r}"


def worker_refusal(body: bytes, headers: dict[str, Any] | None) -> str | None:
    """Why the worker answers ``invalid_event``; None when it takes the event."""
    try:
        check_headers(headers)
        parse_step_event(body)
    except InvalidEvent as exc:
        return exc.message
    return None
