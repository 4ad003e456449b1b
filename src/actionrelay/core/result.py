"""Turning an HTTP answer or a failure into the result event. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from actionrelay.core.action import ActionDefinition
from actionrelay.core.errors import HttpStatusError, StepFailure
from actionrelay.core.event import ActionResult, ResultError, StepRecord, utc_now_iso

EXCERPT_CHARS = 300
EXCERPT_MARGIN = 16 * 1024  # read past the cut, so that a secret across it is whole
Mask = Callable[[str], str]
MAX_RESULT_RESPONSE_BYTES = 64 * 1024
ABORT_HEADER = "X-Actionrelay-Retry"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An API's answer, as the HTTP client hands it over."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    truncated: bool
    latency_ms: float


def excerpt(body: bytes, limit: int = EXCERPT_CHARS, mask: Mask = str) -> str:
    """A printable start of a response body, for error messages and dead-letter headers.

    Masked before it is cut: a secret the API echoes across the cut would
    otherwise leave its first half behind.
    """
    text = mask(body[: limit * 4 + EXCERPT_MARGIN].decode("utf-8", errors="replace"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kept_response(action: ActionDefinition, body: bytes) -> Any:
    """The JSON response, reduced to the action's declared fields."""
    if not body:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    fields = action.response.fields
    if fields is None or not isinstance(parsed, dict):
        return parsed
    return {key: parsed[key] for key in fields if key in parsed}


def check_status(
    action: ActionDefinition, response: HttpResponse, host: str | None, mask: Mask = str
) -> None:
    """Success is 2xx only; anything else raises HttpStatusError (its excerpt masked)."""
    if 200 <= response.status < 300:
        return
    body = excerpt(response.body, mask=mask)
    message = f"action {action.name}: {host} answered HTTP {response.status}"
    abort = response.headers.get(ABORT_HEADER, "").strip().lower() == "abort"
    raise HttpStatusError(
        f"{message}: {body}" if body else message,
        http_status=response.status,
        body_excerpt=body,
        retry_after=response.headers.get("Retry-After"),
        abort=abort,
    )


def bounded_response(action: ActionDefinition, response: HttpResponse) -> tuple[Any, bool]:
    """The kept response, or (None, True) when it would not fit in a result."""
    if response.truncated:
        return None, True
    kept = kept_response(action, response.body)
    if len(response.body) > MAX_RESULT_RESPONSE_BYTES and (
        len(orjson.dumps(kept)) > MAX_RESULT_RESPONSE_BYTES
    ):
        return None, True
    return kept, False


def success_result(
    event: StepRecord, action: ActionDefinition, response: HttpResponse, attempts: int
) -> ActionResult:
    kept, truncated = bounded_response(action, response)
    return ActionResult(
        event_id=event.event_id,
        action=action.name,
        action_version=action.version,
        journey=event.journey,
        profile_id=event.profile_id,
        status="success",
        status_code=f"http_{response.status}",
        http_status=response.status,
        response=kept,
        response_truncated=truncated,
        attempts=attempts,
        latency_ms=round(response.latency_ms, 1),
        completed_at=utc_now_iso(),
    )


def failure_result(
    failure: StepFailure,
    *,
    event_id: str | None,
    action_name: str | None,
    event: StepRecord | None,
    action: ActionDefinition | None,
    attempts: int,
    latency_ms: float | None,
) -> ActionResult:
    return ActionResult(
        event_id=event_id,
        action=action_name,
        action_version=action.version if action else None,
        journey=event.journey if event else None,
        profile_id=event.profile_id if event else None,
        status=failure.status,
        status_code=failure.status_code,
        http_status=failure.http_status,
        error=ResultError(
            type=failure.error_type,
            message=failure.message,
            response_excerpt=getattr(failure, "body_excerpt", None) or None,
        ),
        attempts=attempts,
        latency_ms=None if latency_ms is None else round(latency_ms, 1),
        completed_at=utc_now_iso(),
    )
