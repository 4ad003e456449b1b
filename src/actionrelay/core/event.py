"""The messages actionrelay consumes and publishes.

Pure: parsing and shaping only. ``StepEvent`` is what the journey engine sends
(``StepRecord`` what the worker keeps of it during the call), ``ActionResult``
what the journey branches on.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pamqp import encode
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from actionrelay.core.errors import InvalidEvent

ResultStatus = Literal["success", "error", "timedout", "invalid", "capped"]
MAX_ID_LENGTH = 256
MAX_EVENT_BYTES = 1024 * 1024
MAX_HEADERS_BYTES = 64 * 1024  # leaves room for actionrelay's own under RabbitMQ's 128 KiB frame
MAX_JSON_DEPTH = 1024  # orjson's: arrays and objects nested in the whole body
AMQP_SHORTSTR_BYTES = 255  # message_id, correlation_id, reply_to, routing keys
# Printable: no C0 control character and no DEL (they would break HTTP headers and logs).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
# RFC 3339 date-time with seconds (00-59, no leap second) and a required offset.
DEADLINE_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DEADLINE = re.compile(DEADLINE_PATTERN)


class StepEvent(BaseModel):
    """A journey step that calls a custom action."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="Stable id, the same on every resend: the Idempotency-Key of every call "
        "(sent as UTF-8) and the result's event_id. 1 to 256 characters, no control "
        "characters.",
    )
    action: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Action name.")
    journey: dict[str, Any] | None = Field(default=None, description="Returned as received.")
    profile_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Variable values.")
    deadline: AwareDatetime | None = Field(
        default=None,
        description="After this instant the call is not made (timedout). RFC 3339 with "
        "seconds and an offset: 2026-11-27T12:00:30Z, 2026-11-27T13:00:30.5+01:00.",
        json_schema_extra={"pattern": DEADLINE_PATTERN},
    )

    @field_validator("deadline", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        """The one format the document gives: no Unix number, no time without seconds."""
        if value is None:
            return value
        if not isinstance(value, str) or not _DEADLINE.match(value):
            raise ValueError(
                "must be an RFC 3339 date-time with seconds and a time zone offset, "
                "like 2026-11-27T12:00:30Z"
            )
        return value.upper()


@dataclass(slots=True, repr=False)
class StepRecord:
    """What the worker keeps of a validated ``StepEvent`` while its call is out: what
    the result carries and the deadline. The params go into the request and are not
    held a second time, nor is the model (about 1.5 KB per open call; docs/performance.md).
    """

    event_id: str
    action: str
    journey: dict[str, Any] | None = None
    profile_id: str | None = None
    deadline: datetime | None = None

    @classmethod
    def of(cls, event: StepEvent) -> StepRecord:
        return cls(event.event_id, event.action, event.journey, event.profile_id, event.deadline)

    def __repr__(self) -> str:  # ids only: the journey may be large, the profile personal
        return f"<StepRecord event_id={self.event_id!r} action={self.action!r}>"


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


def amqp_id(value: str, suffix: str = "") -> str:
    """``value + suffix`` when it fits an AMQP short string (255 UTF-8 bytes), else
    ``sha256:<64 hex digits of value's UTF-8>`` + suffix: as unique, and the same on
    every redelivery. Used for the result's message_id and correlation_id."""
    if len(value.encode()) + len(suffix.encode()) <= AMQP_SHORTSTR_BYTES:
        return value + suffix
    return f"sha256:{hashlib.sha256(value.encode()).hexdigest()}{suffix}"


def check_headers(headers: Mapping[str, Any] | None) -> None:
    """InvalidEvent when the application headers are over ``MAX_HEADERS_BYTES`` encoded:
    actionrelay's copies add their own, and a header frame has to fit RabbitMQ's frame."""
    if not headers:
        return
    size = len(encode.field_table(dict(headers)))
    if size > MAX_HEADERS_BYTES:
        raise InvalidEvent(
            f"the message's AMQP headers are {size:,} bytes encoded; the limit is "
            f"{MAX_HEADERS_BYTES:,} bytes"
        )


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
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
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
