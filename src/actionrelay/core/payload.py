"""Building the HTTP request of a custom action from a step event's params.

Pure: no I/O. Every problem with the params is collected into one
PayloadError so the journey author sees all of them at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from yarl import URL

from actionrelay.core.action import HEADER_VALUE, ActionDefinition
from actionrelay.core.errors import PayloadError
from actionrelay.core.event import dumps_fitted
from actionrelay.core.form import FORM, Fields, form_fields, multipart, urlencoded
from actionrelay.core.template import OMIT, render, resolve

USER_AGENT = "actionrelay/0.1 (+https://github.com/actionrelay/actionrelay)"


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    method: str
    url: URL
    headers: dict[str, str]
    body: bytes | None
    event_id: str = ""
    # A form body's fields before encoding, to show them (``actions test``).
    fields: Fields | None = None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path_segment(name: str, params: Mapping[str, Any], action: str, problems: list[str]) -> str:
    value = params.get(name)
    if value is None:
        problems.append(f"missing variable '{name}' for action {action}")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(f"path variable '{name}' for action {action} must be a string or integer")
        return ""
    text = str(value)
    if text in ("", ".", ".."):
        problems.append(f"path variable '{name}' for action {action} must not be {text!r}")
    # One segment: '/', '?', '#', '%' and everything else outside unreserved is encoded.
    return quote(text, safe="")


def _url(action: ActionDefinition, params: Mapping[str, Any], problems: list[str]) -> URL:
    url = action.base_url
    if action.path:
        segments = {
            name: _path_segment(name, params, action.name, problems) for name in action.path_vars
        }
        url = URL(str(url) + action.path.format_map(segments), encoded=True)
    query: list[tuple[str, str]] = []
    for key, param in action.compiled_query.items():
        if isinstance(param, str):
            query.append((key, param))
            continue
        value = resolve(param, params, action.name, problems)
        if value is OMIT or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        query.extend((key, _text(item)) for item in values)
    return url.update_query(query) if query else url


def _headers(
    action: ActionDefinition, params: Mapping[str, Any], event_id: str, problems: list[str]
) -> dict[str, str]:
    headers = {
        "Content-Type": FORM if action.body_format == "form" else "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": event_id,
    }
    for name, param in action.compiled_headers.items():
        if isinstance(param, str):
            headers[name] = param
            continue
        value = resolve(param, params, action.name, problems)
        if value is OMIT or value is None:
            continue
        text = ",".join(map(_text, value)) if isinstance(value, list) else _text(value)
        if not HEADER_VALUE.fullmatch(text):
            problems.append(
                f"header {name} for action {action.name}: value of variable "
                f"'{param.name}' contains control characters (CR, LF, …)"
            )
            continue
        headers[name] = text
    return headers


def _encoded(
    action: ActionDefinition, rendered: Any, problems: list[str]
) -> tuple[bytes | None, Fields | None, str | None]:
    """(body, form fields, Content-Type when it depends on the body)."""
    if action.body_format == "json":
        return dumps_fitted(rendered), None, None
    if not isinstance(rendered, dict):
        problems.append(f"the form body of action {action.name} must be an object")
        return None, None, None
    try:
        fields = form_fields(rendered, action.lists)
    except ValueError as exc:
        problems.append(f"action {action.name}: body field {exc}")
        return None, None, None
    if action.body_format == "form":
        return urlencoded(fields), fields, None
    body, content_type = multipart(fields)
    return body, fields, content_type


def build_request(
    action: ActionDefinition, params: Mapping[str, Any], event_id: str
) -> OutboundRequest:
    """The request to send for one step event, or PayloadError listing every problem."""
    problems: list[str] = []
    url = _url(action, params, problems)
    headers = _headers(action, params, event_id, problems)
    body = fields = None
    if action.compiled_body is not None:
        rendered = render(action.compiled_body, params, action.name, problems)
        # A body that is a single placeholder may resolve to OMIT: send no body.
        if rendered is not OMIT:
            body, fields, content_type = _encoded(action, rendered, problems)
            if content_type is not None:
                headers["Content-Type"] = content_type
    if problems:
        raise PayloadError("; ".join(problems))
    return OutboundRequest(action.method, url, headers, body, event_id, fields)
