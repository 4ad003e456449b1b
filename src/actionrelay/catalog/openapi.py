"""The OpenAPI 3.1 document of the catalog API (``catalog/api.py``).

``actionrelay openapi`` prints it as YAML into ``docs/openapi.yaml``;
``tests/unit/catalog/test_openapi.py`` keeps that file current, checks it against
the OpenAPI 3.1 specification and the API's real answers against its schemas.
"""

from __future__ import annotations

from typing import Any, get_args

from actionrelay import __version__
from actionrelay.core.auth import AuthSpec
from actionrelay.core.template import VAR_TYPES

REF = "#/components/schemas/{name}"
NULLABLE_NUMBER = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _auth_types() -> list[str]:
    union, *_ = get_args(AuthSpec)
    return [get_args(model.model_fields["type"].annotation)[0] for model in get_args(union)]


def _schemas() -> dict[str, Any]:
    return {
        "ActionList": {
            "type": "object",
            "required": ["count", "actions"],
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "actions": {"type": "array", "items": _ref("Action")},
            },
        },
        "Action": {
            "type": "object",
            "required": [
                "name", "version", "description", "method", "host", "url", "auth",
                "params", "response_fields", "retry", "deadline", "limits",
            ],
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,30}$"},
                "version": {"type": "integer", "minimum": 1},
                "description": {"type": "string"},
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                "host": {"type": "string", "description": "The host the action calls."},
                "url": {
                    "type": "string",
                    "description": "The URL called, path variables as {name}; no user "
                    "info, secrets masked as ***. Query parameters are not shown.",
                },
                "auth": _ref("Auth"),
                "params": {
                    "type": "object",
                    "description": "JSON Schema (draft 2020-12) of the step event's params: "
                    "types, formats, required (not optional), null allowed (nullable), "
                    "lists as arrays. x-actionrelay-type holds the action file's type: "
                    + ", ".join(VAR_TYPES) + ".",
                },
                "response_fields": {
                    "type": ["array", "null"],
                    "items": {"type": "string"},
                    "description": "Top-level keys of the API's JSON answer kept in the "
                    "result event for later steps; null: all of them.",
                },
                "retry": _ref("RetryPolicy"),
                "deadline": _ref("Deadline"),
                "limits": {"oneOf": [_ref("EndpointLimits"), {"type": "null"}]},
            },
        },
        "Auth": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": _auth_types()}},
            "description": "How the action authenticates; credentials are never shown.",
        },
        "RetryPolicy": {
            "type": "object",
            "required": ["max_attempts", "schedule_seconds", "jitter", "on"],
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1},
                "schedule_seconds": {"type": "array", "items": {"type": "number"}},
                "jitter": {"type": "number", "minimum": 0, "maximum": 1},
                "on": {
                    "type": ["array", "null"],
                    "items": {"type": "string"},
                    "description": "Retried failures (timeout, connection, 503, 5xx); "
                    "null: the built-in retryable set.",
                },
            },
        },
        "Deadline": {
            "type": "object",
            "required": ["timeout_seconds", "max_age_seconds"],
            "properties": {
                "timeout_seconds": {"type": "number", "description": "Per attempt."},
                "max_age_seconds": NULLABLE_NUMBER
                | {"description": "From first receipt, when the event has no deadline."},
            },
        },
        "EndpointLimits": {
            "type": "object",
            "description": "The endpoints.yaml entry the action's calls fall under.",
            "required": ["url", "methods", "key"],
            "properties": {
                "url": {"type": "string"},
                "key": {"type": "string"},
                "methods": {"type": "array", "items": {"type": "string"}},
                "capping": {"type": ["object", "null"]},
                "throttling": {"type": ["object", "null"]},
                "max_connections": {"type": ["integer", "null"]},
                "breaker": {"type": "object"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
                }
            },
        },
    }  # fmt: skip


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
        "content": {"application/json": {"schema": _ref(schema)}},
    }


NOT_MODIFIED = {
    "description": "Not modified: the ETag given in If-None-Match is still current.",
    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag of the last answer: 304 while nothing changed.",
}
SECURITY_NOTE = (
    " Served by `actionrelay run` on its health port (ACTIONRELAY_HTTP_PORT) without "
    "authentication, like /metrics; by `actionrelay console` behind its token when it "
    "listens beyond loopback."
)


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "actionrelay catalog API",
            "version": __version__,
            "description": "Which custom actions exist and what each takes: enough for a "
            "journey engine to build its palette. Follows the workers' hot reload." + SECURITY_NOTE,
        },
        "paths": {
            "/api/v1/actions": {
                "get": {
                    "operationId": "listActions",
                    "summary": "Every action, in full, sorted by name.",
                    "parameters": [IF_NONE_MATCH],
                    "responses": {
                        "200": _json("ActionList", "The catalog."),
                        "304": NOT_MODIFIED,
                    },
                }
            },
            "/api/v1/actions/{name}": {
                "get": {
                    "operationId": "getAction",
                    "summary": "One action.",
                    "parameters": [
                        NAME,
                        IF_NONE_MATCH,
                    ],
                    "responses": {
                        "200": _json("Action", "The action."),
                        "304": NOT_MODIFIED,
                        "404": {
                            "description": "No such action.",
                            "content": {"application/json": {"schema": _ref("Error")}},
                        },
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "headers": {
                "ETag": {
                    "description": "Strong validator of the body; send it back in If-None-Match.",
                    "schema": {"type": "string"},
                }
            },
        },
    }  # fmt: skip
