"""``actionrelay actions test``: one real call of an action, like the leader's "send test request".

The request is built exactly as the worker builds it and sent through the same
``HttpClient`` under the same egress policy; what is shown of it has every
credential masked. Nothing is published to RabbitMQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from yarl import URL

from actionrelay.core import retry
from actionrelay.core.action import ActionDefinition
from actionrelay.core.auth import (
    ApiKeyAuth,
    AuthSpec,
    BasicAuth,
    BearerAuth,
    CustomAuth,
    NoAuth,
    OAuth2ClientCredentials,
    TokenAuth,
)
from actionrelay.core.errors import HttpStatusError, StepFailure
from actionrelay.core.jwt_auth import OAuth2JwtBearer, SelfSignedJwt
from actionrelay.core.payload import OutboundRequest, build_request
from actionrelay.core.result import HttpResponse, check_status
from actionrelay.core.secret import MASK, Redactor
from actionrelay.http.client import Endpoint, HttpClient
from actionrelay.http.egress import EgressPolicy
from actionrelay.observability.logs import SECRET_KEYS
from actionrelay.settings import Settings


@dataclass(frozen=True, slots=True)
class ShownRequest:
    """A request as it is displayed: credentials replaced by ``***``."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    request: ShownRequest
    response: HttpResponse | None
    failure: StepFailure | None
    verdict: str

    @property
    def succeeded(self) -> bool:
        return self.response is not None and self.failure is None


def auth_mode(auth: AuthSpec) -> str:
    """How an action authenticates, in a few words for tables."""
    if isinstance(auth, ApiKeyAuth):
        return f"api_key ({auth.location} {auth.name})"
    if isinstance(auth, CustomAuth):
        where = auth.send_as if auth.send_as == "bearer" else f"{auth.send_as} {auth.send_name}"
        return f"custom token ({where})"
    if isinstance(auth, OAuth2ClientCredentials):
        return "oauth2 client credentials"
    if isinstance(auth, OAuth2JwtBearer):
        return f"oauth2 jwt bearer ({auth.signing_algorithm})"
    if isinstance(auth, SelfSignedJwt):
        return f"self-signed jwt ({auth.signing_algorithm})"
    return auth.type


def _credentials(auth: AuthSpec) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters the client adds for ``auth``, values masked."""
    if isinstance(auth, ApiKeyAuth):
        place = {auth.name: MASK}
        return (place, {}) if auth.location == "header" else ({}, place)
    if isinstance(auth, CustomAuth) and auth.send_as != "bearer":
        place = {auth.send_name or "": MASK}
        return (place, {}) if auth.send_as == "header" else ({}, place)
    if isinstance(auth, BasicAuth):
        return {"Authorization": f"Basic {MASK}"}, {}
    if isinstance(auth, BearerAuth | TokenAuth):
        return {"Authorization": f"Bearer {MASK}"}, {}
    assert isinstance(auth, NoAuth)
    return {}, {}


SIGNED_HEADERS = {
    "webhook-id": "",  # the event id, filled in below
    "webhook-timestamp": "<Unix seconds when sent>",
    "webhook-signature": "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
}


def _shown_body(request: OutboundRequest, redactor: Redactor) -> Any:
    """A JSON body as JSON; a form body as its fields, ``name=value`` one a line."""
    if request.body is None:
        return None
    if request.fields is not None:
        return "\n".join(f"{name}={redactor.mask(value)}" for name, value in request.fields)
    return redactor.mask_value(orjson.loads(request.body))


def shown_request(
    request: OutboundRequest, auth: AuthSpec, redactor: Redactor, *, signed: bool = False
) -> ShownRequest:
    """What was sent, with the credentials the client adds and every known secret masked."""
    headers, query = _credentials(auth)
    url: URL = request.url.update_query(query) if query else request.url
    all_headers = {**request.headers, **headers}
    if signed:
        all_headers.update({**SIGNED_HEADERS, "webhook-id": request.event_id})
    masked = {
        name: MASK if name.lower() in SECRET_KEYS else redactor.mask(value)
        for name, value in all_headers.items()
    }
    body = _shown_body(request, redactor)
    return ShownRequest(request.method, redactor.mask(str(url)), masked, body)


def verdict(action: ActionDefinition, failure: StepFailure | None) -> str:
    """What the worker would do with this outcome."""
    if failure is None:
        return "success: the journey takes its success path"
    if retry.is_retryable(failure, action.retry):
        return (
            f"transient ({failure.error_type}): the worker retries, "
            f"up to {action.retry.max_attempts} attempts in all"
        )
    return f"permanent ({failure.error_type}): the worker dead-letters the event at once"


async def probe(
    action: ActionDefinition,
    params: dict[str, Any],
    *,
    event_id: str,
    settings: Settings,
    redactor: Redactor,
) -> ProbeOutcome:
    """Build the request from ``params`` (PayloadError if they do not fit) and send it once."""
    request = build_request(action, params, event_id)
    egress = EgressPolicy.from_settings(settings.allow_http_hosts, settings.allow_private_networks)
    http = HttpClient(egress=egress, redactor=redactor, max_connections=settings.max_connections)
    response: HttpResponse | None = None
    failure: StepFailure | None = None
    async with http:
        try:
            response = await http.call(request, action.timeout_seconds, Endpoint.for_action(action))
            check_status(action, response, request.url.host, redactor.mask)
        except HttpStatusError as exc:
            failure = exc
        except StepFailure as exc:
            failure, response = exc, None
    if failure is not None:
        failure.message = redactor.mask(failure.message)
    return ProbeOutcome(
        shown_request(request, action.auth, redactor, signed=action.signing is not None),
        response,
        failure,
        verdict(action, failure),
    )
