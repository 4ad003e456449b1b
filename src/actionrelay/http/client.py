"""The HTTP side: one pooled aiohttp session that calls third-party APIs.

Credentials are applied here, redirects are followed here (each hop checked
against the egress policy), and aiohttp exceptions are translated here, once,
into the actionrelay tree.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from actionrelay.core.action import ActionDefinition, TlsSpec
from actionrelay.core.auth import (
    TOKEN_AUTHS,
    ApiKeyAuth,
    AuthSpec,
    BasicAuth,
    BearerAuth,
    CustomAuth,
    TokenAnswer,
    TokenRequest,
    basic_credentials,
)
from actionrelay.core.errors import CallTimeout, ConfigError, ConnectFailure, PermanentFailure
from actionrelay.core.payload import OutboundRequest
from actionrelay.core.result import HttpResponse
from actionrelay.core.secret import Redactor
from actionrelay.core.signing import SigningSpec, signed_headers
from actionrelay.http.egress import EgressPolicy, GuardedResolver
from actionrelay.http.tokens import AuthFailure, TokenCache

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What one action needs to call its API: credentials and TLS, built once at load."""

    action: str
    auth: AuthSpec
    ssl: ssl.SSLContext | bool
    signing: SigningSpec | None = None

    @classmethod
    def for_action(cls, action: ActionDefinition) -> Endpoint:
        tls = ssl_context(action.name, action.tls)
        return cls(action.name, action.auth, tls, action.signing)


def ssl_context(action: str, tls: TlsSpec) -> ssl.SSLContext | bool:
    """True (aiohttp's verifying default) unless the action asks for more; TLS 1.2+."""
    if tls == TlsSpec():
        return True
    try:
        context = ssl.create_default_context(cafile=tls.ca_bundle)
        if tls.client_cert is not None:
            context.load_cert_chain(tls.client_cert, tls.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"action {action}: cannot load TLS files: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ClientState(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class TooManyRedirects(PermanentFailure):
    error_type = "too_many_redirects"


# Shared by every call that adds no credential header of its own.
AUTHORIZATION_ONLY = frozenset({"authorization"})


@dataclass(slots=True)
class Prepared:
    """A request with credentials applied; ``token`` is set for token-based auth."""

    url: URL
    headers: dict[str, str]
    token: str | None = None
    # Lower-case names of headers carrying credentials: never sent to another origin.
    credentials: frozenset[str] = AUTHORIZATION_ONLY

    def add_credential(self, header: str) -> None:
        self.credentials = self.credentials | {header.lower()}


class HttpClient:
    """Calls endpoints; opened once per worker, shared by every in-flight call."""

    def __init__(
        self,
        *,
        egress: EgressPolicy,
        redactor: Redactor | None = None,
        max_connections: int = 0,
        on_token_fetch: Callable[[str], None] = lambda _outcome: None,
    ) -> None:
        self._egress = egress
        self._on_token_fetch = on_token_fetch
        self.redactor = redactor or Redactor()
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self.tokens = TokenCache(self._fetch_token, on_token=self.redactor.add)
        self.state = ClientState.UNOPENED

    async def open(self) -> None:
        if self.state is not ClientState.UNOPENED:
            raise RuntimeError(f"HttpClient cannot be opened when {self.state.value}")
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            ttl_dns_cache=300,
            resolver=GuardedResolver(self._egress),
        )
        # No aiohttp timers: call() bounds the whole exchange with one asyncio.timeout.
        # No cookie jar: a cookie one event's call gets must not ride along on the
        # next event's call, which may be for another profile or tenant.
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.state = ClientState.OPEN

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.state = ClientState.CLOSED

    async def __aenter__(self) -> HttpClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def call(
        self, request: OutboundRequest, budget_seconds: float, endpoint: Endpoint
    ) -> HttpResponse:
        """Send ``request``; token fetch, one 401 refresh and redirects fit in the budget."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(budget_seconds):
                prepared = await self._authorize(request, endpoint)
                response = await self._send(request, prepared, endpoint.ssl)
                if response.status == 401 and prepared.token is not None:
                    assert isinstance(endpoint.auth, TOKEN_AUTHS)
                    self.tokens.invalidate(endpoint.auth, prepared.token)
                    prepared = await self._authorize(request, endpoint)
                    response = await self._send(request, prepared, endpoint.ssl)
        except TimeoutError as exc:
            host = request.url.host
            raise CallTimeout(
                f"no complete answer from {host} within {budget_seconds:g} s"
            ) from exc
        except AuthFailure as exc:
            message = self.redactor.mask(f"action {endpoint.action}: {exc.message}")
            raise AuthFailure(message, retryable=exc.retryable) from exc
        return replace(response, latency_ms=(loop.time() - started) * 1000)

    async def _authorize(self, request: OutboundRequest, endpoint: Endpoint) -> Prepared:
        auth = endpoint.auth
        prepared = Prepared(request.url, dict(request.headers))
        if isinstance(auth, BasicAuth):
            prepared.headers["Authorization"] = f"Basic {basic_credentials(auth)}"
        elif isinstance(auth, ApiKeyAuth):
            value = auth.value.get_secret_value()
            if auth.location == "header":
                prepared.headers[auth.name] = value
                prepared.add_credential(auth.name)
            else:
                prepared.url = prepared.url.update_query({auth.name: value})
        elif isinstance(auth, BearerAuth):
            prepared.headers["Authorization"] = f"Bearer {auth.token.get_secret_value()}"
        elif isinstance(auth, TOKEN_AUTHS):
            prepared.token = token = await self.tokens.get(auth)
            send_as = auth.send_as if isinstance(auth, CustomAuth) else "bearer"
            name = auth.send_name if isinstance(auth, CustomAuth) else None
            if send_as == "bearer":
                prepared.headers["Authorization"] = f"Bearer {token}"
            elif send_as == "header" and name:
                prepared.headers[name] = token
                prepared.add_credential(name)
            elif name:
                prepared.url = prepared.url.update_query({name: token})
        if endpoint.signing is not None:  # signed as sent: each attempt has its own timestamp
            stamp = int(time.time())
            signed = signed_headers(endpoint.signing, request.event_id, stamp, request.body)
            prepared.headers.update(signed)
        return prepared

    def _send(
        self, request: OutboundRequest, prepared: Prepared, tls: ssl.SSLContext | bool
    ) -> Coroutine[Any, Any, HttpResponse]:
        return self.exchange(  # the coroutine itself: one frame less on every resume
            request.method,
            prepared.url,
            prepared.headers,
            request.body,
            tls,
            credentials=prepared.credentials,
        )

    async def exchange(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        tls: ssl.SSLContext | bool = True,
        *,
        credentials: frozenset[str] | None = AUTHORIZATION_ONLY,
    ) -> HttpResponse:
        """One request with redirects followed by hand, each hop checked by the egress policy.

        Headers named in ``credentials`` are dropped when a redirect leaves the
        origin; ``credentials=None`` means everything sent is a credential (a token
        request), so such a redirect is refused outright.
        """
        if self._session is None or self.state is not ClientState.OPEN:
            raise RuntimeError("HttpClient is not open")
        for _ in range(MAX_REDIRECTS + 1):
            self._egress.check_url(url)
            try:
                async with self._session.request(
                    method, url, headers=headers, data=body, ssl=tls, allow_redirects=False
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status not in REDIRECT_STATUSES or not location:
                        content, truncated = await _read_limited(resp)
                        return HttpResponse(resp.status, resp.headers, content, truncated, 0.0)
            except aiohttp.ClientError as exc:
                raise ConnectFailure(f"calling {url.host} failed: {_describe(exc)}") from exc
            target = url.join(URL(location))
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            if target.origin() != url.origin():
                if credentials is None:
                    raise ConnectFailure(
                        f"{url.host} redirected a credential request to {target.origin()}; "
                        "credentials are not sent to another origin"
                    )
                headers = {k: v for k, v in headers.items() if k.lower() not in credentials}
            url = target
        raise TooManyRedirects(f"{url.host} redirected more than {MAX_REDIRECTS} times")

    async def _fetch_token(self, request: TokenRequest) -> TokenAnswer:
        where = f"token endpoint {request.url.with_query(None)}"
        try:
            answer = await self.exchange(
                request.method, request.url, request.headers, request.body, credentials=None
            )
        except (ConnectFailure, TooManyRedirects) as exc:
            self._on_token_fetch("error")
            raise AuthFailure(f"{where}: {exc.message}", retryable=exc.retryable) from exc
        self._on_token_fetch("ok" if 200 <= answer.status < 300 else "error")
        return TokenAnswer(answer.status, answer.body)


async def _read_limited(resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    length = resp.content_length
    if length is not None and length <= MAX_RESPONSE_BYTES:
        return await resp.read(), False  # the common case: one read, no chunk loop
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], True
    return b"".join(chunks), False


def _describe(exc: aiohttp.ClientError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
