"""Structured logging, configured once by the CLI."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from actionrelay.core.secret import Redactor

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api_key",
        "password",
        "secret",
        "token",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask values of credential-like keys, also inside a ``headers`` mapping."""
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = "***"
    headers = event_dict.get("headers")
    if isinstance(headers, dict):
        event_dict["headers"] = {
            k: "***" if k.lower() in SECRET_KEYS else v for k, v in headers.items()
        }
    return event_dict


def _orjson_dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(
    level: str = "info", fmt: str = "json", redactor: Redactor | None = None
) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks are text by now, so the redaction below masks them too.
            structlog.processors.format_exc_info,
            redact_secrets,
            redactor or Redactor(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
