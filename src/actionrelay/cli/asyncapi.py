"""The AsyncAPI 3.1 document of actionrelay's messages, generated from the pydantic models.

What AsyncAPI cannot say in its own terms is said with extensions that
tests/integration/contract.py checks on every message the integration tests see:
``x-amqp-properties`` (a JSON Schema of the AMQP basic properties, which are not
application headers), ``x-max-bytes`` (a size in bytes) and ``x-max-depth``
(JSON nesting).
"""

from __future__ import annotations

from typing import Any

import yaml

from actionrelay import __version__
from actionrelay.core.event import (
    AMQP_SHORTSTR_BYTES,
    MAX_EVENT_BYTES,
    MAX_HEADERS_BYTES,
    MAX_JSON_DEPTH,
    ActionResult,
    StepEvent,
)
from actionrelay.settings import Settings

REF_TEMPLATE = "#/components/schemas/{model}"
AMQP = "0.3.0"
RESULT_TYPE = "actionrelay.result"
RESULT_ERROR_TYPES = [
    "invalid_event", "unknown_action", "validation", "forbidden_destination", "http_error",
    "auth", "timeout", "connection", "deadline_expired", "too_many_redirects", "capped",
    "internal",
]  # fmt: skip
DEAD_LETTER_ERROR_TYPES = [*RESULT_ERROR_TYPES, "result_unpublishable"]
PUBLISHING = (
    "Publish step events persistent (delivery mode 2) and wait for the broker's publisher "
    "confirm before treating one as sent; on a nack, a return or a lost connection, publish "
    "it again with the same event_id. actionrelay dedupes nothing: a resend is answered "
    "again, and the API sees the same Idempotency-Key. A quorum queue can drop unconfirmed "
    "publishes of a channel closed right after them (RabbitMQ 3.10, docs/reliability.md)."
)


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (StepEvent, ActionResult):
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["ResultError"]["properties"]["type"]["enum"] = RESULT_ERROR_TYPES
    return schemas | _property_schemas()


def _short(description: str, **extra: Any) -> dict[str, Any]:
    """An AMQP short string: at most 255 UTF-8 bytes."""
    return {
        "type": "string",
        "maxLength": AMQP_SHORTSTR_BYTES,
        "x-max-bytes": AMQP_SHORTSTR_BYTES,
        "description": description,
        **extra,
    }


def _property_schemas() -> dict[str, Any]:
    persistent = {"const": 2, "description": "Persistent."}
    return {
        "StepEventProperties": {
            "type": "object",
            "description": "AMQP basic properties the worker reads (all optional).",
            "properties": {
                "reply_to": _short("Queue for the result; else the results exchange."),
                "correlation_id": _short("Copied to the result's correlation_id."),
                "message_id": _short("The result's correlation_id when correlation_id is unset."),
                "delivery_mode": persistent | {"description": "Publish persistent."},
            },
        },
        "ActionResultProperties": {
            "type": "object",
            "required": ["content_type", "delivery_mode", "message_id", "type"],
            "properties": {
                "content_type": {"const": "application/json"},
                "delivery_mode": persistent,
                "type": {"const": RESULT_TYPE},
                "message_id": _short(
                    "<event_id>.result, or sha256:<64 hex digits of the event_id's UTF-8>.result "
                    "when that is over 255 bytes. For an event without a usable event_id, its "
                    "message_id or correlation_id the same way, else a random id."
                ),
                "correlation_id": _short(
                    "The event's correlation_id, else its message_id, else its event_id "
                    "(sha256:<hex> when over 255 bytes)."
                ),
            },
        },
        "DeadLetterProperties": {
            "type": "object",
            "description": "The original message's properties, made persistent.",
            "required": ["delivery_mode"],
            "properties": {"delivery_mode": persistent},
        },
    }


def _message(name: str, title: str, summary: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": REF_TEMPLATE.format(model=name)},
        **fields,
    }


def _headers(properties: dict[str, Any], max_bytes: int | None = None) -> dict[str, Any]:
    headers: dict[str, Any] = {"type": "object", "properties": properties}
    if max_bytes is not None:
        headers["x-max-bytes"] = max_bytes
    return headers


DEAD_LETTER_HEADERS: dict[str, dict[str, Any]] = {
    f"x-actionrelay-{name}": {"type": kind, "description": text}
    for name, kind, text in (
        ("error-type", "string", "Why the event failed (the result's error.type, or "
         "result_unpublishable: its result was refused)."),
        ("error-message", "string", "What went wrong and what to fix (at most 1,000 characters)."),
        ("status-code", "string", "The final result's status_code."),
        ("http-status", "integer", "Last HTTP status, if any."),
        ("attempts", "integer", "Calls made."),
        ("first-attempt-at", "string", "ISO 8601."),
        ("last-attempt-at", "string", "ISO 8601."),
        ("action", "string", "Action name, as the event gave it."),
        ("action-version", "integer", "Action version."),
        ("failed-at", "string", "ISO 8601."),
        ("worker-id", "string", "The replica that gave up."),
    )
}  # fmt: skip
DEAD_LETTER_HEADERS["x-actionrelay-error-type"]["enum"] = DEAD_LETTER_ERROR_TYPES
TRACE_HEADERS = {
    "traceparent": {"type": "string", "description": "W3C trace context, carried through."},
    "tracestate": {"type": "string", "description": "W3C trace state, carried through."},
}
CORRELATION = {
    "location": "$message.payload#/event_id",
    "description": "The event_id ties a result to its step event. The AMQP correlation_id "
    "property is also echoed (x-amqp-properties).",
}


def _messages() -> dict[str, Any]:
    step = _message(
        "StepEvent",
        "Journey step event",
        "A profile reached a custom action step.",
        description=f"At most {MAX_EVENT_BYTES:,} bytes of JSON nested at most "
        f"{MAX_JSON_DEPTH} levels, with at most {MAX_HEADERS_BYTES:,} bytes of AMQP headers "
        "(encoded); past a limit the event gets an invalid result. " + PUBLISHING,
        headers=_headers(TRACE_HEADERS, MAX_HEADERS_BYTES),
        correlationId=CORRELATION,
        **{
            "x-max-bytes": MAX_EVENT_BYTES,
            "x-max-depth": MAX_JSON_DEPTH,
            "x-amqp-properties": {"$ref": REF_TEMPLATE.format(model="StepEventProperties")},
        },
    )
    result = _message(
        "ActionResult",
        "Action result",
        "The outcome the journey branches on; one per step event, more only after a broker "
        "fault (same event_id).",
        headers=_headers(TRACE_HEADERS),
        correlationId=CORRELATION,
        bindings={"amqp": {"messageType": RESULT_TYPE, "bindingVersion": AMQP}},
        **{"x-amqp-properties": {"$ref": REF_TEMPLATE.format(model="ActionResultProperties")}},
    )
    dead = _message(
        "DeadLetter",
        "Dead letter",
        "The original message, body and properties, with why it failed in headers.",
        description="The body is the step event exactly as it was published: a StepEvent, "
        "or for error-type invalid_event any bytes at all (not JSON, a JSON value that is no "
        "step event, over a limit). A letter that RabbitMQ dead-lettered itself after the "
        "delivery limit has no x-actionrelay headers, only RabbitMQ's x-death.",
        headers=_headers(DEAD_LETTER_HEADERS),
        **{"x-amqp-properties": {"$ref": REF_TEMPLATE.format(model="DeadLetterProperties")}},
    )
    dead["payload"] = {
        "anyOf": [
            {"$ref": REF_TEMPLATE.format(model="StepEvent")},
            {"description": "Any other body, for error-type invalid_event."},
        ]
    }
    return {"StepEvent": step, "ActionResult": result, "DeadLetter": dead}


def document(settings: Settings | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.1 document for the default queue and exchange names."""
    s = settings or Settings.model_construct()  # the defaults, whatever the environment
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "actionrelay",
            "version": __version__,
            "description": "Journey custom actions: step events in, result events out, over "
            "RabbitMQ. At-least-once; every call carries Idempotency-Key: <event_id>. "
            + PUBLISHING,
        },
        "defaultContentType": "application/json",
        "channels": _channels(s),
        "operations": _operations(),
        "components": {"messages": _messages(), "schemas": _schemas()},
    }


def _queue(name: str) -> dict[str, Any]:
    queue = {"name": name, "durable": True, "exclusive": False, "autoDelete": False}
    return {"amqp": {"is": "queue", "queue": queue, "bindingVersion": AMQP}}


def _channels(s: Settings) -> dict[str, Any]:
    exchange = {"name": s.results_exchange, "type": "topic", "durable": True, "autoDelete": False}
    return {
        "requests": {
            "address": s.request_queue,
            "description": f"Durable {s.queue_type} queue the workers consume.",
            "messages": {"StepEvent": {"$ref": "#/components/messages/StepEvent"}},
            "bindings": _queue(s.request_queue),
        },
        "results": {
            "address": "{action}.{status}",
            "description": f"Topic exchange {s.results_exchange}, routing key "
            f"<action>.<status> (unknown.<status> for an action name that is not one); the "
            f"queue {s.results_queue} is bound to #. Used when the event has no reply_to, or "
            "its reply_to queue refuses the result.",
            "parameters": {
                "action": {"description": "The action name, or unknown."},
                "status": {"enum": ["success", "error", "timedout", "invalid", "capped"]},
            },
            "messages": {"ActionResult": {"$ref": "#/components/messages/ActionResult"}},
            "bindings": {
                "amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": AMQP}
            },
        },
        "replies": {
            "address": None,
            "description": "The queue the step event's AMQP reply_to property names, through "
            "the default exchange.",
            "messages": {"ActionResult": {"$ref": "#/components/messages/ActionResult"}},
        },
        "deadLetters": {
            "address": s.dead_letter_queue,
            "description": "Final failures, with why in x-actionrelay-* headers.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": _queue(s.dead_letter_queue),
        },
    }


def _operations() -> dict[str, Any]:
    publish = {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP}}
    return {
        "consumeStepEvents": {
            "action": "receive",
            "description": PUBLISHING,
            "channel": {"$ref": "#/channels/requests"},
            "messages": [{"$ref": "#/channels/requests/messages/StepEvent"}],
            "bindings": {"amqp": {"ack": True, "deliveryMode": 2, "bindingVersion": AMQP}},
            "reply": {
                "channel": {"$ref": "#/channels/replies"},
                "messages": [{"$ref": "#/channels/replies/messages/ActionResult"}],
            },
        },
        "publishResults": {
            "action": "send",
            "channel": {"$ref": "#/channels/results"},
            "messages": [{"$ref": "#/channels/results/messages/ActionResult"}],
            "bindings": publish,
        },
        "deadLetter": {
            "action": "send",
            "channel": {"$ref": "#/channels/deadLetters"},
            "messages": [{"$ref": "#/channels/deadLetters/messages/DeadLetter"}],
            "bindings": publish,
        },
    }


def render() -> str:
    header = (
        "# Generated by `actionrelay asyncapi`; tests/unit/cli/test_asyncapi.py keeps it current.\n"
    )

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = yaml.dump(document(), Dumper=NoAliases, sort_keys=False, allow_unicode=True, width=100)
    return header + body
