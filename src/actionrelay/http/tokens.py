"""Fetching and caching the tokens of OAuth2 and custom auth modes.

``TokenCache`` does its I/O through the fetch function it is given, so it never
imports the HTTP client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actionrelay.core.auth import (
    CustomAuth,
    OAuth2ClientCredentials,
    TokenAnswer,
    TokenRequest,
    read_token,
    secret_values,
    token_request,
)
from actionrelay.core.errors import StepFailure

TokenFetch = Callable[[TokenRequest], Awaitable[TokenAnswer]]


class AuthFailure(StepFailure):
    """Credentials could not be obtained or were refused; names action and endpoint."""

    error_type = "auth"

    def __init__(self, message: str, *, retryable: bool = False, http_status: int | None = None):
        super().__init__(message, http_status=http_status)
        self.retryable = retryable  # type: ignore[misc]


@dataclass(slots=True)
class CachedToken:
    value: str
    refresh_at: float  # monotonic


class TokenCache:
    """Tokens by credentials; one fetch per key however many calls wait for it."""

    def __init__(self, fetch: TokenFetch, on_token: Callable[[str], None] = lambda _: None):
        self._fetch = fetch
        self._on_token = on_token
        self._tokens: dict[str, CachedToken] = {}
        self._pending: dict[str, asyncio.Future[str]] = {}
        self.fetches = 0

    @staticmethod
    def key(auth: OAuth2ClientCredentials | CustomAuth) -> str:
        return auth.model_dump_json(round_trip=True) + "|" + "|".join(secret_values(auth))

    async def get(self, auth: OAuth2ClientCredentials | CustomAuth) -> str:
        key = self.key(auth)
        cached = self._tokens.get(key)
        if cached is not None and time.monotonic() < cached.refresh_at:
            return cached.value
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(key, auth))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    def invalidate(self, auth: OAuth2ClientCredentials | CustomAuth, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a 401 said it is no good)."""
        key = self.key(auth)
        cached = self._tokens.get(key)
        if cached is not None and cached.value == token:
            del self._tokens[key]

    async def _refresh(self, key: str, auth: OAuth2ClientCredentials | CustomAuth) -> str:
        self.fetches += 1
        request = token_request(auth)
        answer = await self._fetch(request)
        where = f"token endpoint {request.url.with_query(None)}"
        if not 200 <= answer.status < 300:
            transient = answer.status in (408, 429) or answer.status >= 500
            raise AuthFailure(f"{where} answered HTTP {answer.status}", retryable=transient)
        try:
            token, lifetime = read_token(auth, answer.body)
        except ValueError as exc:
            raise AuthFailure(f"{where}: {exc}") from exc
        self._on_token(token)
        margin = min(auth.refresh_margin_seconds, lifetime / 2)
        self._tokens[key] = CachedToken(token, time.monotonic() + lifetime - margin)
        return token
