"""The AsyncAPI 3 document of actionrelay's messages, generated from the pydantic models."""

from __future__ import annotations

from typing import Any

import yaml

from actionrelay import __version__
from actionrelay.event import ActionResult, StepEvent
from actionrelay.settings import Settings

REF_TEMPLATE = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (StepEvent, ActionResult):
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _message(name: str, title: str, summary: str, headers: dict[str, Any] | None = None) -> Any:
    message: dict[str, Any] = {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": REF_TEMPLATE.format(model=name)},
    }
    if headers:
        message["headers"] = {"type": "object", "properties": headers}
    return message


DEAD_LETTER_HEADERS = {
    f"x-actionrelay-{name}": {"type": kind, "description": text}
    for name, kind, text in (
        ("error-type", "string", "invalid_event, unknown_action, validation, http_error, …"),
        ("error-message", "string", "What went wrong and what to fix."),
        ("status-code", "string", "The final result's status_code."),
        ("http-status", "integer", "Last HTTP status, if any."),
        ("attempts", "integer", "Calls made."),
        ("first-attempt-at", "string", "ISO 8601."),
        ("last-attempt-at", "string", "ISO 8601."),
        ("action", "string", "Action name."),
        ("action-version", "integer", "Action version."),
        ("failed-at", "string", "ISO 8601."),
        ("worker-id", "string", "The replica that gave up."),
    )
}
TRACE_HEADERS = {
    "traceparent": {"type": "string", "description": "W3C trace context, carried through."},
    "tracestate": {"type": "string", "description": "W3C trace state, carried through."},
}


def document(settings: Settings | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for the default queue and exchange names."""
    s = settings or Settings.model_construct()  # the defaults, whatever the environment
    step = _message("StepEvent", "Journey step event", "A profile reached a custom action step.")
    step["headers"] = {"type": "object", "properties": TRACE_HEADERS}
    step["correlationId"] = {"location": "$message.header#/correlation_id"}
    result = _message("ActionResult", "Action result", "The outcome the journey branches on.")
    result["headers"] = {"type": "object", "properties": TRACE_HEADERS}
    dead = _message("StepEvent", "Dead letter", "The original step event with failure headers.") | {
        "name": "DeadLetter",
        "headers": {"type": "object", "properties": DEAD_LETTER_HEADERS},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "actionrelay",
            "version": __version__,
            "description": "Journey custom actions: step events in, result events out, over "
            "RabbitMQ. At-least-once; every call carries Idempotency-Key: <event_id>.",
        },
        "defaultContentType": "application/json",
        "channels": _channels(s),
        "operations": OPERATIONS,
        "components": {
            "messages": {"StepEvent": step, "ActionResult": result, "DeadLetter": dead},
            "schemas": _schemas(),
        },
    }


def _channels(s: Settings) -> dict[str, Any]:
    return {
        "requests": {
            "address": s.request_queue,
            "description": "Durable quorum queue the workers consume.",
            "messages": {"StepEvent": {"$ref": "#/components/messages/StepEvent"}},
        },
        "results": {
            "address": f"{s.results_exchange}/{{action}}.{{status}}",
            "description": "Topic exchange; routing key <action>.<status>. A queue "
            f"{s.results_queue} is bound to #. Results go to reply_to instead when set.",
            "parameters": {"action": {}, "status": {}},
            "messages": {"ActionResult": {"$ref": "#/components/messages/ActionResult"}},
        },
        "deadLetters": {
            "address": s.dead_letter_queue,
            "description": "Final failures, with why in x-actionrelay-* headers.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        },
    }


OPERATIONS = {
    "consumeStepEvents": {
        "action": "receive",
        "channel": {"$ref": "#/channels/requests"},
        "messages": [{"$ref": "#/channels/requests/messages/StepEvent"}],
    },
    "publishResults": {
        "action": "send",
        "channel": {"$ref": "#/channels/results"},
        "messages": [{"$ref": "#/channels/results/messages/ActionResult"}],
    },
    "deadLetter": {
        "action": "send",
        "channel": {"$ref": "#/channels/deadLetters"},
        "messages": [{"$ref": "#/channels/deadLetters/messages/DeadLetter"}],
    },
}


def render() -> str:
    header = (
        "# Generated by `actionrelay asyncapi`; tests/unit/test_asyncapi.py keeps it current.\n"
    )
    return header + yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
