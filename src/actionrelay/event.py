"""The messages actionrelay consumes and publishes.

Pure: parsing and shaping only. ``StepEvent`` is what the journey engine sends,
``ActionResult`` what the journey branches on.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from actionrelay.errors import InvalidEvent

ResultStatus = Literal["success", "error", "timedout", "invalid", "capped"]
MAX_ID_LENGTH = 256
MAX_EVENT_BYTES = 1024 * 1024


class StepEvent(BaseModel):
    """A journey step that calls a custom action."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Stable id.")
    action: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Action name.")
    journey: dict[str, Any] | None = Field(default=None, description="Returned as received.")
    profile_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Variable values.")
    deadline: AwareDatetime | None = Field(
        default=None, description="After this instant the call is not made (timedout)."
    )


class ResultError(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str = Field(description="invalid_event, unknown_action, validation, http_error, …")
    message: str = Field(description="What went wrong and what to fix.")
    response_excerpt: str | None = Field(
        default=None, description="Start of the last response body, for HTTP errors."
    )


class ActionResult(BaseModel):
    """The outcome of one step event."""

    event_id: str | None
    action: str | None
    action_version: int | None = None
    journey: dict[str, Any] | None = None
    profile_id: str | None = None
    status: ResultStatus
    status_code: str = Field(description="http_<code>, timedout, invalid, capped or internalError.")
    http_status: int | None = None
    response: Any = Field(default=None, description="Kept fields of the JSON response.")
    response_truncated: bool = Field(
        default=False, description="The response was over 64 KiB and is left out."
    )
    error: ResultError | None = None
    attempts: int = 0
    latency_ms: float | None = None
    completed_at: str

    def to_json(self) -> bytes:
        return dumps_fitted(self.model_dump(mode="python"))


def dumps_fitted(value: Any) -> bytes:
    """``orjson.dumps`` in a bytes object of the JSON's own size.

    orjson hands back its whole working buffer (4 KiB or more, however short the
    JSON); a body kept while its call or its confirm is awaited would hold all
    of it, a thousand times over with a thousand events in flight.
    """
    return memoryview(orjson.dumps(value)).tobytes()


def utc_now_iso() -> str:
    """Now, as 2026-11-27T12:00:01.123Z; the seconds part is formatted once a second."""
    now = time.time()
    second = int(now)
    if second != _second_cache[0]:
        _second_cache[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second_cache[1]}.{int((now - second) * 1000):03d}Z"


_second_cache: list[Any] = [None, ""]


def parse_step_event(body: bytes) -> StepEvent:
    """Validate a message body; InvalidEvent says what is wrong with it."""
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"step event is {len(body):,} bytes; the limit is {MAX_EVENT_BYTES:,} bytes (1 MiB)"
        )
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"message body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidEvent(f"message body must be a JSON object, not {type(raw).__name__}")
    try:
        return StepEvent.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidEvent(f"invalid step event: {problems}") from exc


def salvage_ids(body: bytes) -> tuple[str | None, str | None]:
    """Best-effort event_id and action from a body that failed validation."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(raw, dict):
        return None, None
    event_id, action = raw.get("event_id"), raw.get("action")
    return (
        event_id if isinstance(event_id, str) else None,
        action if isinstance(action, str) else None,
    )
