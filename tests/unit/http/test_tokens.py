"""The token cache: one fetch per credentials, refresh before expiry, failures named."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from actionrelay.core.auth import TokenAnswer, TokenRequest
from actionrelay.http.tokens import AuthFailure, TokenCache
from tests.unit.core.test_auth import TOKEN_URL, custom, oauth2

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
