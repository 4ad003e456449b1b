"""Fetching, signing and caching the tokens of the OAuth2, custom and JWT auth modes.

``TokenCache`` does its I/O through the fetch function it is given, so it never
imports the HTTP client. A self-signed JWT is a token made here instead of
fetched: it is cached, refreshed early and made once however many calls wait,
like a fetched one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actionrelay.core.auth import (
    TokenAnswer,
    TokenAuth,
    TokenRequest,
    jwt_grant_request,
    read_token,
    secret_values,
    token_request,
)
from actionrelay.core.errors import StepFailure
from actionrelay.core.jwt_auth import OAuth2JwtBearer, SelfSignedJwt, jwt_claims

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
    def key(auth: TokenAuth) -> str:
        return auth.model_dump_json(round_trip=True) + "|" + "|".join(secret_values(auth))

    async def get(self, auth: TokenAuth) -> str:
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

    def invalidate(self, auth: TokenAuth, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a 401 said it is no good)."""
        key = self.key(auth)
        cached = self._tokens.get(key)
        if cached is not None and cached.value == token:
            del self._tokens[key]

    async def _refresh(self, key: str, auth: TokenAuth) -> str:
        self.fetches += 1
        if isinstance(auth, SelfSignedJwt):
            token, lifetime = sign_jwt(auth), float(auth.lifetime_seconds)
        else:
            token, lifetime = await self._fetch_token(auth)
        self._on_token(token)
        margin = min(auth.refresh_margin_seconds, lifetime / 2)
        self._tokens[key] = CachedToken(token, time.monotonic() + lifetime - margin)
        return token

    async def _fetch_token(self, auth: TokenAuth) -> tuple[str, float]:
        if isinstance(auth, OAuth2JwtBearer):
            assertion = sign_jwt(auth)
            self._on_token(assertion)  # a credential until it expires
            request = jwt_grant_request(auth, assertion)
        else:
            assert not isinstance(auth, SelfSignedJwt)
            request = token_request(auth)
        answer = await self._fetch(request)
        where = f"token endpoint {request.url.with_query(None)}"
        if not 200 <= answer.status < 300:
            transient = answer.status in (408, 429) or answer.status >= 500
            raise AuthFailure(f"{where} answered HTTP {answer.status}", retryable=transient)
        try:
            return read_token(auth, answer.body)
        except ValueError as exc:
            raise AuthFailure(f"{where}: {exc}") from exc


def sign_jwt(auth: OAuth2JwtBearer | SelfSignedJwt) -> str:
    """The JWT of ``auth``, signed now with its key (checked when the action loaded)."""
    import jwt  # with cryptography, several MB that only JWT actions need

    claims, headers = jwt_claims(auth, int(time.time()), uuid.uuid4().hex)
    try:
        return jwt.encode(claims, auth.key_pem(), auth.signing_algorithm, headers=headers)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise AuthFailure(f"cannot sign the JWT: {type(exc).__name__}") from exc
