"""The JWT auth modes against a real token endpoint that checks the JWT, and a real API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from actionrelay.core.action import ActionDefinition
from actionrelay.core.payload import build_request
from actionrelay.http.client import Endpoint, HttpClient
from actionrelay.http.egress import EgressPolicy
from tests.integration.auth_support import (
    JWT_BEARER,
    ProtectedApi,
    TokenServer,
    jwt_bearer_grant,
)
from tests.integration.http.test_auth import bearer_of, run_events
from tests.integration.support import Received, WorkerHarness
from tests.keys import SERVICE_ACCOUNT_EMAIL, ec_key, rsa_key, service_account_text

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@pytest.fixture
async def api() -> AsyncIterator[ProtectedApi]:
    """Replaces conftest's recording API: the harness calls this protected one."""
    server = ProtectedApi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    """A Google-like token endpoint: a token only for a JWT the service account signed."""
    server = TokenServer()
    await server.start()
    server.check = jwt_bearer_grant(
        rsa_key().public,
        issuer=SERVICE_ACCOUNT_EMAIL,
        audience=f"{server.url}/token",
        scope=SCOPE,
    )
    yield server
    await server.stop()


def grant_auth(token_server: TokenServer, key_file: Path, **fields: Any) -> dict[str, Any]:
    """oauth2_jwt_bearer with the service-account file by reference, as in production."""
    key_file.write_text(service_account_text(token_uri=f"{token_server.url}/token"))
    return {
        "type": "oauth2_jwt_bearer",
        "service_account": f"${{file:{key_file}}}",
        "scopes": [SCOPE],
        **fields,
    }


async def test_the_token_comes_from_a_verified_service_account_jwt_and_is_reused(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer, tmp_path: Path
) -> None:
    api.authorized = bearer_of(token_server)
    harness.action({"name": "push", "auth": grant_auth(token_server, tmp_path / "sa.json")})
    await harness.start_worker()

    results = await run_events(harness, "push", 3)

    assert [r["status"] for r in results] == ["success"] * 3, results[0]["error"]
    assert token_server.refused == []
    [call] = token_server.calls
    assert call.fields["grant_type"] == JWT_BEARER
    header = jwt.get_unverified_header(call.fields["assertion"])
    assert (header["alg"], header["kid"]) == ("RS256", "3f8e1c0d9b7a")
    assert api.credentials() == ["Bearer tok-1"] * 3


async def test_a_jwt_signed_with_another_key_is_refused_and_the_event_fails_with_auth(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer, tmp_path: Path
) -> None:
    other_key = rsa_key(traditional=True)  # another RSA key than the service account's
    token_server.check = jwt_bearer_grant(
        other_key.public, issuer=SERVICE_ACCOUNT_EMAIL, audience=f"{token_server.url}/token",
        scope=SCOPE,
    )  # fmt: skip
    harness.action({"name": "push", "auth": grant_auth(token_server, tmp_path / "sa.json")})
    await harness.start_worker()

    [result] = await run_events(harness, "push", 1)

    assert result["status"] == "error"
    assert result["error"]["type"] == "auth"
    assert (
        f"token endpoint {token_server.url}/token answered HTTP 400" in result["error"]["message"]
    )
    assert "InvalidSignatureError" in token_server.refused[0]
    assert api.received == []


async def test_the_token_is_refreshed_a_margin_before_it_expires_with_a_new_jwt(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.expires_in = 2
    api.authorized = bearer_of(token_server)
    auth = grant_auth(token_server, tmp_path / "sa.json", refresh_margin_seconds=1)
    harness.action({"name": "push", "auth": auth})
    await harness.start_worker()

    first = await run_events(harness, "push", 2)
    await asyncio.sleep(1.2)  # past expiry minus the margin, before expiry
    second = await run_events(harness, "push", 2)

    assert {r["status"] for r in first + second} == {"success"}
    assert api.credentials() == [f"Bearer {t}" for t in ("tok-1", "tok-1", "tok-2", "tok-2")]
    assert len(token_server.calls) == 2
    assert token_server.refused == []


async def test_a_401_gets_a_new_token_once(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer, tmp_path: Path
) -> None:
    api.authorized = lambda r: r.headers.get("Authorization") == "Bearer tok-2"
    harness.action({"name": "push", "auth": grant_auth(token_server, tmp_path / "sa.json")})
    await harness.start_worker()

    [result] = await run_events(harness, "push", 1)

    assert result["status"] == "success"
    assert api.credentials() == ["Bearer tok-1", "Bearer tok-2"]


@pytest.mark.parametrize(("status", "attempts"), [(503, 2), (401, 1)])
async def test_a_failing_token_endpoint_is_an_auth_error_retried_as_for_oauth2(
    harness: WorkerHarness,
    api: ProtectedApi,
    token_server: TokenServer,
    tmp_path: Path,
    status: int,
    attempts: int,
) -> None:
    token_server.fail_status = status
    retry = {"max_attempts": 2, "schedule_seconds": [0.1], "jitter": 0}
    auth = grant_auth(token_server, tmp_path / "sa.json")
    harness.action({"name": "push", "auth": auth, "retry": retry})
    await harness.start_worker()

    [result] = await run_events(harness, "push", 1)
    [dead] = await harness.dead_letters(1)

    assert (result["status"], result["error"]["type"]) == ("error", "auth")
    message = result["error"]["message"]
    assert f"action push: token endpoint {token_server.url}/token answered HTTP {status}" in message
    assert result["attempts"] == attempts == len(token_server.calls)
    assert dead.headers["x-actionrelay-error-type"] == "auth"
    assert api.received == []


async def test_500_concurrent_calls_sign_and_exchange_one_jwt(
    api: ProtectedApi, token_server: TokenServer, tmp_path: Path
) -> None:
    api.authorized = bearer_of(token_server)
    auth = grant_auth(token_server, tmp_path / "sa.json")
    auth["service_account"] = (tmp_path / "sa.json").read_text()
    action = ActionDefinition.model_validate({"name": "burst", "url": f"{api.url}/x", "auth": auth})
    egress = EgressPolicy.from_settings("127.0.0.1", "127.0.0.1/32")
    async with HttpClient(egress=egress, max_connections=100) as client:
        requests = [build_request(action, {}, f"e-{i}") for i in range(500)]
        endpoint = Endpoint.for_action(action)
        responses = await asyncio.gather(*(client.call(r, 10, endpoint) for r in requests))

    assert {r.status for r in responses} == {200}
    assert len(token_server.calls) == client.tokens.fetches == 1
    assert set(api.credentials()) == {"Bearer tok-1"}


# --- self-signed JWT (Vonage applications) -----------------------------------------


def vonage_jwt(key: Any, algorithm: str, application_id: str) -> Any:
    """What a Vonage API checks of the bearer JWT: signature, application_id, iat, jti."""

    def authorized(received: Received) -> bool:
        token = received.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], options={"require": ["iat", "exp", "jti"]}
            )
        except jwt.PyJWTError:
            return False
        fresh = abs(claims["iat"] - time.time()) < 60
        return bool(claims["application_id"] == application_id and fresh)

    return authorized


@pytest.mark.parametrize(
    ("key", "algorithm"), [(rsa_key(), "RS256"), (ec_key("P-256"), "ES256")], ids=["RS256", "ES256"]
)
async def test_a_self_signed_jwt_is_the_bearer_and_is_reused(
    harness: WorkerHarness, api: ProtectedApi, key: Any, algorithm: str, tmp_path: Path
) -> None:
    (tmp_path / "private.key").write_text(key.private_pem)
    api.authorized = vonage_jwt(key.public, algorithm, "aaaaaaaa-bbbb-cccc")
    auth = {
        "type": "self_signed_jwt",
        "private_key": f"${{file:{tmp_path / 'private.key'}}}",
        "claims": {"application_id": "aaaaaaaa-bbbb-cccc"},
    }
    harness.action({"name": "vonage", "auth": auth, "retry": {"max_attempts": 1}})
    await harness.start_worker()

    results = await run_events(harness, "vonage", 2)

    assert [r["status"] for r in results] == ["success", "success"], results[0]["error"]
    assert len(set(api.credentials())) == 1
