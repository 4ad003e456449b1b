"""The token cache: one fetch per credentials, refresh before expiry, failures named."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import jwt
import orjson
import pytest

from actionrelay.core.auth import TokenAnswer, TokenRequest
from actionrelay.http.tokens import AuthFailure, TokenCache
from tests.keys import SERVICE_ACCOUNT_EMAIL, rsa_key, service_account_text
from tests.unit.core.test_auth import TOKEN_URL, custom, oauth2
from tests.unit.core.test_jwt_auth import grant, self_signed

# --- the token cache --------------------------------------------------------------


class TokenEndpoint:
    """A fetch function: answers scripted statuses, issues tok-1, tok-2, …"""

    def __init__(self, expires_in: float = 3600, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.statuses: list[int] = []
        self.requests: list[TokenRequest] = []

    async def __call__(self, request: TokenRequest) -> TokenAnswer:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        token = f"tok-{len(self.requests)}"
        return TokenAnswer(
            status, orjson.dumps({"access_token": token, "expires_in": self.expires_in})
        )


async def test_concurrent_gets_share_one_fetch() -> None:
    endpoint = TokenEndpoint(delay=0.01)
    cache = TokenCache(endpoint)

    tokens = await asyncio.gather(*(cache.get(oauth2()) for _ in range(200)))

    assert set(tokens) == {"tok-1"}
    assert len(endpoint.requests) == cache.fetches == 1


async def test_cached_token_is_reused_and_keyed_by_credentials() -> None:
    endpoint = TokenEndpoint()
    cache = TokenCache(endpoint)

    assert await cache.get(oauth2()) == "tok-1"
    assert await cache.get(oauth2()) == "tok-1"
    assert await cache.get(oauth2(client_secret="other")) == "tok-2"
    assert await cache.get(oauth2(scopes=["x"])) == "tok-3"
    assert cache.fetches == 3


async def test_invalidate_forgets_only_the_token_that_was_refused() -> None:
    cache = TokenCache(TokenEndpoint())
    auth = oauth2()
    first = await cache.get(auth)

    cache.invalidate(auth, first)
    second = await cache.get(auth)
    cache.invalidate(auth, first)  # a late 401 for the old token

    assert (first, second) == ("tok-1", "tok-2")
    assert await cache.get(auth) == "tok-2"


@pytest.mark.parametrize(
    ("margin", "refetched"),
    [(0.0, False), (0.2, True), (60.0, True)],  # a margin is capped at half the lifetime
)
async def test_token_is_refreshed_a_margin_before_expiry(margin: float, refetched: bool) -> None:
    cache = TokenCache(TokenEndpoint(expires_in=0.4))
    auth = oauth2(refresh_margin_seconds=margin)

    await cache.get(auth)
    await asyncio.sleep(0.25)  # past expiry minus the (capped) margin, before expiry
    token = await cache.get(auth)

    assert token == ("tok-2" if refetched else "tok-1")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (400, False), (401, False)],
)
async def test_a_failing_token_endpoint_raises_auth_failure(status: int, retryable: bool) -> None:
    endpoint = TokenEndpoint()
    endpoint.statuses = [status]
    cache = TokenCache(endpoint)
    auth = custom(method="GET", body={"key": "in-query-secret"})

    with pytest.raises(AuthFailure) as failure:
        await cache.get(auth)

    assert failure.value.retryable is retryable
    assert failure.value.error_type == "auth"
    assert failure.value.message == f"token endpoint {TOKEN_URL} answered HTTP {status}"
    assert await cache.get(auth) == "tok-2"  # a failure is not cached


async def test_an_unreadable_answer_raises_auth_failure_naming_the_endpoint() -> None:
    async def fetch(_: TokenRequest) -> TokenAnswer:
        return TokenAnswer(200, b'{"token": "misnamed"}')

    with pytest.raises(AuthFailure, match=f"token endpoint {TOKEN_URL}: no token"):
        await TokenCache(fetch).get(oauth2())


async def test_fetched_tokens_are_reported_for_redaction() -> None:
    seen: list[str] = []
    cache = TokenCache(TokenEndpoint(), on_token=seen.append)
    await cache.get(oauth2())
    assert seen == ["tok-1"]


# --- JWT modes ----------------------------------------------------------------------


async def test_a_self_signed_jwt_is_signed_once_cached_and_verifies() -> None:
    async def no_fetch(_: TokenRequest) -> TokenAnswer:
        raise AssertionError("a self-signed JWT needs no token endpoint")

    seen: list[str] = []
    cache = TokenCache(no_fetch, on_token=seen.append)
    auth = self_signed(claims={"application_id": "app-1"}, lifetime_seconds=120)

    tokens = await asyncio.gather(*(cache.get(auth) for _ in range(50)))

    assert len(set(tokens)) == 1
    assert cache.fetches == 1
    assert seen == tokens[:1]
    claims = jwt.decode(tokens[0], rsa_key().public, algorithms=["RS256"])  # type: ignore[arg-type]
    assert claims["application_id"] == "app-1"
    assert claims["exp"] - claims["iat"] == 120
    assert len(claims["jti"]) == 32


async def test_a_self_signed_jwt_is_made_anew_a_margin_before_it_expires() -> None:
    async def no_fetch(_: TokenRequest) -> TokenAnswer:
        raise AssertionError("no fetch")

    cache = TokenCache(no_fetch)
    auth = self_signed(lifetime_seconds=1, refresh_margin_seconds=0.7)  # capped at 0.5 s

    first = await cache.get(auth)
    await asyncio.sleep(0.6)
    second = await cache.get(auth)

    assert first != second
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


async def test_a_jwt_grant_sends_a_fresh_signed_assertion_and_reads_the_token() -> None:
    endpoint = TokenEndpoint(expires_in=1800)
    seen: list[str] = []
    cache = TokenCache(endpoint, on_token=seen.append)
    auth = grant(service_account=service_account_text(), scopes=["s1"])

    assert await cache.get(auth) == "tok-1"

    [request] = endpoint.requests
    assert request.body is not None
    form = dict(parse_qsl(request.body.decode("ascii")))
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"],
        rsa_key().public,  # type: ignore[arg-type]
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
        issuer=SERVICE_ACCOUNT_EMAIL,
    )
    assert claims["scope"] == "s1"
    assert seen == [form["assertion"], "tok-1"]  # both are masked from then on
