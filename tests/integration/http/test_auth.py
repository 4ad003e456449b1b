"""Every auth mode against a real protected API and a real token endpoint; mTLS."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web

from actionrelay.cli.demo_api import make_app
from actionrelay.core.action import ActionDefinition
from actionrelay.core.payload import build_request
from actionrelay.http.client import Endpoint, HttpClient
from actionrelay.http.egress import EgressPolicy
from tests.integration.auth_support import (
    FORM,
    EchoApi,
    Pki,
    ProtectedApi,
    TlsApi,
    TokenServer,
    basic_header,
    client_credentials,
    make_pki,
)
from tests.integration.support import Received, WorkerHarness, step_event

ONE_ATTEMPT = {"max_attempts": 1}


@pytest.fixture
async def api() -> AsyncIterator[ProtectedApi]:
    """Replaces conftest's recording API: the harness calls this protected one."""
    server = ProtectedApi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    await server.start()
    yield server
    await server.stop()


def bearer_of(token_server: TokenServer) -> Callable[[Received], bool]:
    """Authorized when the request carries a token the server issued."""
    return lambda r: r.headers.get("Authorization") in {f"Bearer {t}" for t in token_server.issued}


def oauth2(token_server: TokenServer, **fields: Any) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": f"{token_server.url}/oauth/token",
        "client_id": "journeys",
        "client_secret": "s3cret-client",
        **fields,
    }


async def run_events(harness: WorkerHarness, action: str, count: int) -> list[dict[str, Any]]:
    """Publish ``count`` events for ``action`` one after the other; their results."""
    results = []
    for i in range(count):
        await harness.publish(step_event(f"{action}-{i}", action))
        results += await harness.results(1)
    return results


# --- static credentials -----------------------------------------------------------

STATIC_MODES: list[tuple[str, dict[str, Any], Callable[[Received], bool]]] = [
    (
        "basic",
        {"type": "basic", "username": "svc-user", "password": "pa:ss wörd"},
        lambda r: r.headers.get("Authorization") == basic_header("svc-user", "pa:ss wörd"),
    ),
    (
        "api_key_header",
        {"type": "api_key", "name": "X-Api-Key", "value": "key-123", "in": "header"},
        lambda r: r.headers.get("X-Api-Key") == "key-123",
    ),
    (
        "api_key_query",
        {"type": "api_key", "name": "api_key", "value": "key-&=?", "in": "query"},
        lambda r: ("api_key", "key-&=?") in r.query,
    ),
    (
        "bearer",
        {"type": "bearer", "token": "static-bearer-token"},
        lambda r: r.headers.get("Authorization") == "Bearer static-bearer-token",
    ),
]


@pytest.mark.parametrize(
    ("auth", "authorized"),
    [pytest.param(auth, check, id=name) for name, auth, check in STATIC_MODES],
)
async def test_static_credentials_are_accepted_by_the_protected_api(
    harness: WorkerHarness,
    api: ProtectedApi,
    auth: dict[str, Any],
    authorized: Callable[[Received], bool],
) -> None:
    api.authorized = authorized
    harness.action({"name": "callIt", "query": {"source": "journeys"}, "auth": auth})
    await harness.start_worker()

    [result] = await run_events(harness, "callIt", 1)

    assert result["status"] == "success", result["error"]
    [call] = api.received
    assert ("source", "journeys") in call.query
    if auth["type"] == "api_key":
        # The key goes only where it was asked to go.
        assert ("X-Api-Key" in call.headers) == (auth["in"] == "header")
        assert any(name == "api_key" for name, _ in call.query) == (auth["in"] == "query")


async def test_refused_static_credentials_give_a_permanent_http_401(
    harness: WorkerHarness, api: ProtectedApi
) -> None:
    api.authorized = lambda r: r.headers.get("Authorization") == basic_header("svc", "right")
    harness.action(
        {"name": "callIt", "auth": {"type": "basic", "username": "svc", "password": "wrong"}}
    )
    await harness.start_worker()

    [result] = await run_events(harness, "callIt", 1)
    [dead] = await harness.dead_letters(1)

    assert (result["status"], result["status_code"], result["http_status"]) == (
        "error",
        "http_401",
        401,
    )
    assert len(api.received) == 1  # no token to refresh: no second call
    assert dead.headers["x-actionrelay-http-status"] == 401


# --- OAuth2 client credentials ----------------------------------------------------


async def test_oauth2_client_credentials_token_is_fetched_once_and_reused(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer
) -> None:
    token_server.check = client_credentials(
        "journeys", "s3cret-client", scope="sms:send contacts:write", audience="https://sms.test"
    )
    api.authorized = bearer_of(token_server)
    harness.action(
        {
            "name": "sendSms",
            "auth": oauth2(
                token_server, scopes=["sms:send", "contacts:write"], audience="https://sms.test"
            ),
        }
    )
    await harness.start_worker()

    results = await run_events(harness, "sendSms", 3)

    assert [r["status"] for r in results] == ["success"] * 3, results[0]["error"]
    [token_call] = token_server.calls
    assert token_server.refused == []
    assert token_call.content_type == FORM
    assert token_call.fields == {
        "grant_type": "client_credentials",
        "client_id": "journeys",
        "client_secret": "s3cret-client",
        "scope": "sms:send contacts:write",
        "audience": "https://sms.test",
    }
    assert api.credentials() == ["Bearer tok-1"] * 3


async def test_oauth2_token_server_refuses_a_wrong_client_secret(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer
) -> None:
    token_server.check = client_credentials("journeys", "the-real-secret")
    harness.action({"name": "sendSms", "auth": oauth2(token_server)})
    await harness.start_worker()

    [result] = await run_events(harness, "sendSms", 1)

    assert token_server.refused == ["invalid client"]
    assert result["status"] == "error"
    assert result["error"]["type"] == "auth"
    assert api.received == []


@pytest.mark.parametrize(
    ("margin", "tokens"),
    [
        pytest.param(1.0, ["tok-1", "tok-1", "tok-2", "tok-2"], id="refreshed-within-margin"),
        pytest.param(0.0, ["tok-1"] * 4, id="still-valid-without-margin"),
    ],
)
async def test_oauth2_token_is_refreshed_a_margin_before_it_expires(
    harness: WorkerHarness,
    api: ProtectedApi,
    token_server: TokenServer,
    margin: float,
    tokens: list[str],
) -> None:
    token_server.expires_in = 2
    api.authorized = bearer_of(token_server)
    harness.action({"name": "sendSms", "auth": oauth2(token_server, refresh_margin_seconds=margin)})
    await harness.start_worker()

    first_wave = await run_events(harness, "sendSms", 2)
    await asyncio.sleep(1.2)  # past expiry minus 1 s, before expiry
    second_wave = await run_events(harness, "sendSms", 2)

    assert {r["status"] for r in first_wave + second_wave} == {"success"}
    assert api.credentials() == [f"Bearer {t}" for t in tokens]
    assert len(token_server.calls) == len(set(tokens))


async def test_500_concurrent_calls_make_one_token_request(
    api: ProtectedApi, token_server: TokenServer
) -> None:
    api.authorized = bearer_of(token_server)
    action = ActionDefinition.model_validate(
        {"name": "burst", "url": f"{api.url}/hook", "auth": oauth2(token_server)}
    )
    endpoint = Endpoint.for_action(action)
    egress = EgressPolicy.from_settings("127.0.0.1", "127.0.0.1/32")
    async with HttpClient(egress=egress, max_connections=100) as client:
        requests = [build_request(action, {}, f"e-{i}") for i in range(500)]
        responses = await asyncio.gather(*(client.call(r, 10, endpoint) for r in requests))

    assert {r.status for r in responses} == {200}
    assert len(token_server.calls) == 1
    assert client.tokens.fetches == 1
    assert set(api.credentials()) == {"Bearer tok-1"}
    assert len(api.received) == 500


async def test_a_401_refreshes_the_token_and_retries_once(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer
) -> None:
    revoked: set[str] = set()
    api.authorized = lambda r: any(
        r.headers.get("Authorization") == f"Bearer {t}"
        for t in token_server.issued
        if t not in revoked
    )
    harness.action({"name": "sendSms", "auth": oauth2(token_server)})
    await harness.start_worker()

    [before] = await run_events(harness, "sendSms", 1)
    revoked.add("tok-1")  # the provider rotated its keys: the cached token is dead
    [after] = await run_events(harness, "sendSms", 1)

    assert before["status"] == after["status"] == "success"
    assert after["attempts"] == 1
    assert api.credentials() == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert token_server.issued == ["tok-1", "tok-2"]


async def test_a_second_401_is_permanent(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer
) -> None:
    api.authorized = lambda _: False
    harness.action({"name": "sendSms", "auth": oauth2(token_server)})
    await harness.start_worker()

    [result] = await run_events(harness, "sendSms", 1)
    [dead] = await harness.dead_letters(1)

    assert result["status"] == "error"
    assert (result["status_code"], result["http_status"]) == ("http_401", 401)
    assert result["attempts"] == 1
    assert dead.headers["x-actionrelay-error-type"] == "http_error"
    assert api.credentials() == ["Bearer tok-1", "Bearer tok-2"]  # no third call


@pytest.mark.parametrize(("status", "attempts"), [(500, 2), (400, 1)])
async def test_a_failing_token_endpoint_gives_an_auth_error_naming_action_and_endpoint(
    harness: WorkerHarness,
    api: ProtectedApi,
    token_server: TokenServer,
    status: int,
    attempts: int,
) -> None:
    token_server.fail_status = status
    harness.action(
        {
            "name": "sendSms",
            "auth": oauth2(token_server),
            "retry": {"max_attempts": 2, "schedule_seconds": [0.1], "jitter": 0},
        }
    )
    await harness.start_worker()

    [result] = await run_events(harness, "sendSms", 1)
    [dead] = await harness.dead_letters(1)

    assert result["status"] == "error"
    assert result["error"]["type"] == "auth"
    message = result["error"]["message"]
    assert "action sendSms" in message
    assert f"token endpoint {token_server.url}/oauth/token" in message
    assert f"HTTP {status}" in message
    assert result["attempts"] == attempts  # a 5xx token endpoint is retried, a 4xx is not
    assert len(token_server.calls) == attempts
    assert dead.headers["x-actionrelay-error-type"] == "auth"
    assert api.received == []


# --- custom token endpoint --------------------------------------------------------


@dataclass(frozen=True)
class CustomCase:
    """A custom auth block, what its token endpoint answers and should receive."""

    auth: dict[str, Any]
    answer: Callable[[str], Any]
    sent_token: Callable[[Received], str | None]  # where the API finds the token
    content_type: str
    fields: dict[str, Any]


CUSTOM_CASES = {
    "post-json-path-bearer": CustomCase(
        {
            "method": "POST",
            "headers": {"X-Client": "journeys"},
            "body": {"user": "svc", "key": "custom-key-1", "tries": 3},
            "body_format": "json",
            "token_path": "json://data.token",
            "expires_in_path": "json://data.ttl",
            "send_as": "bearer",
        },
        answer=lambda t: {"data": {"token": t, "ttl": 3600}},
        sent_token=lambda r: r.headers.get("Authorization", "").removeprefix("Bearer "),
        content_type="application/json",
        fields={"user": "svc", "key": "custom-key-1", "tries": 3},
    ),
    "post-form-header": CustomCase(
        {
            "method": "POST",
            "body": {"user": "svc", "key": "custom key&2", "tries": 3},
            "body_format": "form",
            "send_as": "header",
            "send_name": "X-Auth-Token",
        },
        answer=lambda t: {"access_token": t},
        sent_token=lambda r: r.headers.get("X-Auth-Token"),
        content_type=FORM,
        fields={"user": "svc", "key": "custom key&2", "tries": "3"},
    ),
    "get-whole-response-query": CustomCase(
        {
            "method": "GET",
            "headers": {"X-Client": "journeys"},
            "body": {"user": "svc", "key": "custom-key-3"},
            "token_path": "response",
            "cache_seconds": 600,
            "send_as": "query",
            "send_name": "access_token",
        },
        answer=lambda t: f"{t}\n",  # text/plain
        sent_token=lambda r: dict(r.query).get("access_token"),
        content_type="",  # no body: the fields go in the query
        fields={"user": "svc", "key": "custom-key-3"},
    ),
}


@pytest.mark.parametrize("case", CUSTOM_CASES.values(), ids=CUSTOM_CASES.keys())
async def test_custom_token_is_fetched_read_and_sent_as_configured(
    harness: WorkerHarness, api: ProtectedApi, token_server: TokenServer, case: CustomCase
) -> None:
    token_server.answer = case.answer
    api.authorized = lambda r: case.sent_token(r) in token_server.issued
    url = f"{token_server.url}/auth/token"
    harness.action(
        {
            "name": "custom",
            "query": {"source": "journeys"},
            "auth": {"type": "custom", "token_url": url, **case.auth},
        }
    )
    await harness.start_worker()

    results = await run_events(harness, "custom", 2)

    assert [r["status"] for r in results] == ["success"] * 2, results[0]["error"]
    [call] = token_server.calls
    assert (call.method, call.path) == (case.auth["method"], "/auth/token")
    assert call.content_type == case.content_type
    assert call.fields == case.fields
    for name, value in case.auth.get("headers", {}).items():
        assert call.headers[name] == value
    assert [case.sent_token(r) for r in api.received] == ["tok-1", "tok-1"]
    assert all(("source", "journeys") in r.query for r in api.received)


@pytest.mark.parametrize(
    ("lifetime", "tokens"),
    [
        pytest.param({"expires_in_path": "json://ttl"}, ["tok-1", "tok-2"], id="expires_in-path"),
        pytest.param({"cache_seconds": 60}, ["tok-1", "tok-1"], id="fixed-cache-seconds"),
    ],
)
async def test_custom_token_lives_as_long_as_the_answer_or_the_action_says(
    harness: WorkerHarness,
    api: ProtectedApi,
    token_server: TokenServer,
    lifetime: dict[str, Any],
    tokens: list[str],
) -> None:
    token_server.answer = lambda t: {"access_token": t, "ttl": 1}
    api.authorized = bearer_of(token_server)
    auth = {"type": "custom", "token_url": f"{token_server.url}/t", "refresh_margin_seconds": 0.2}
    harness.action({"name": "custom", "auth": {**auth, **lifetime}})
    await harness.start_worker()

    [first] = await run_events(harness, "custom", 1)
    await asyncio.sleep(1.0)
    [second] = await run_events(harness, "custom", 1)

    assert first["status"] == second["status"] == "success"
    assert api.credentials() == [f"Bearer {t}" for t in tokens]


# --- mTLS -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_api(pki: Pki) -> AsyncIterator[TlsApi]:
    server = TlsApi(pki.server_context(require_client_cert=True))
    await server.start()
    yield server
    await server.stop()


def tls_action(tls_api: TlsApi, tls: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "mtls",
        "url": f"{tls_api.url}/hook",
        "tls": {k: str(v) if isinstance(v, Path) else v for k, v in tls.items()},
        "retry": ONE_ATTEMPT,
    }


async def test_mtls_with_client_certificate_and_ca_bundle_succeeds(
    harness: WorkerHarness, tls_api: TlsApi, pki: Pki
) -> None:
    tls = {"client_cert": pki.client_cert, "client_key": pki.client_key, "ca_bundle": pki.ca}
    harness.action(tls_action(tls_api, tls))
    await harness.start_worker(allow_http_hosts="")

    [result] = await run_events(harness, "mtls", 1)

    assert result["status"] == "success", result["error"]
    assert len(tls_api.received) == 1


@pytest.mark.parametrize(
    ("tls", "reason"),
    [
        pytest.param({"ca_bundle": "ca"}, "", id="no-client-certificate"),
        pytest.param(
            {"client_cert": "client_cert", "client_key": "client_key"},
            "certificate verify failed",
            id="ca-missing",
        ),
    ],
)
async def test_mtls_fails_with_a_connection_error(
    harness: WorkerHarness, tls_api: TlsApi, pki: Pki, tls: dict[str, str], reason: str
) -> None:
    harness.action(tls_action(tls_api, {k: getattr(pki, v) for k, v in tls.items()}))
    await harness.start_worker(allow_http_hosts="")

    [result] = await run_events(harness, "mtls", 1)

    assert result["status"] == "error"
    assert result["error"]["type"] == "connection"
    assert "calling 127.0.0.1 failed" in result["error"]["message"]
    assert reason.lower() in result["error"]["message"].lower()
    assert tls_api.received == []


async def test_mtls_without_verification_succeeds_and_warns_at_start(
    harness: WorkerHarness, tls_api: TlsApi, pki: Pki
) -> None:
    tls = {"client_cert": pki.client_cert, "client_key": pki.client_key, "verify": False}
    harness.action(tls_action(tls_api, tls))
    process = await harness.spawn_worker(allow_http_hosts="")
    await harness.wait_consuming(1)

    [result] = await run_events(harness, "mtls", 1)
    await harness.terminate(process)
    log = await harness.process_log(process)

    assert result["status"] == "success", result["error"]
    [warning] = log.events("tls.verification_off")
    assert warning["action"] == "mtls"
    assert warning["level"] == "warning"


# --- secrets stay secret ----------------------------------------------------------

SECRETS = {
    "AR_TEST_BASIC_PASSWORD": "basic-pw-Zq81",
    "AR_TEST_BEARER_TOKEN": "bearer-tk-Wx52",
    "AR_TEST_API_KEY": "api-key-Lp07",
    "AR_TEST_CLIENT_SECRET": "client-secret-Rt33",
}


@pytest.fixture
async def echo_api() -> AsyncIterator[EchoApi]:
    server = EchoApi()
    await server.start()
    yield server
    await server.stop()


def secret_actions(echo_api: EchoApi, token_server: TokenServer) -> list[dict[str, Any]]:
    auths: dict[str, dict[str, Any]] = {
        "basic": {"type": "basic", "username": "svc", "password": "${env:AR_TEST_BASIC_PASSWORD}"},
        "bearer": {"type": "bearer", "token": "${env:AR_TEST_BEARER_TOKEN}"},
        "apiKey": {
            "type": "api_key",
            "name": "k",
            "in": "query",
            "value": "${env:AR_TEST_API_KEY}",
        },
        "oauth2": {
            **oauth2(token_server),
            "client_secret": "${env:AR_TEST_CLIENT_SECRET}",
        },
    }
    return [
        {
            "name": f"{mode}{outcome.title()}",
            "url": f"{echo_api.url}/{mode}/{outcome}",
            "auth": auth,
            "retry": ONE_ATTEMPT,
        }
        for mode, auth in auths.items()
        for outcome in ("ok", "fail")
    ]


def everything_written(
    results: list[dict[str, Any]], dead: list[AbstractIncomingMessage], log_lines: list[str]
) -> str:
    parts = [orjson.dumps(r).decode() for r in results]
    for message in dead:
        parts.append(message.body.decode(errors="replace"))
        parts.append(repr(message.headers))
    parts.extend(log_lines)
    return "\n".join(parts)


async def test_secrets_never_appear_in_results_dead_letters_or_logs(
    harness: WorkerHarness,
    echo_api: EchoApi,
    token_server: TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    token_server.check = client_credentials("journeys", SECRETS["AR_TEST_CLIENT_SECRET"])
    actions = secret_actions(echo_api, token_server)
    for action in actions:
        harness.action(action)
    # A worker process as deployed: the CLI resolves the secrets and configures logging.
    process = await harness.spawn_worker(log_level="debug")
    await harness.wait_consuming(1)

    for action in actions:
        await harness.publish(step_event(f"e-{action['name']}", action["name"]))
    results = await harness.results(len(actions))
    dead = await harness.dead_letters(len(actions) // 2)
    await harness.terminate(process)
    log = await harness.process_log(process)

    # The echo API did see the credentials, so they were there to leak.
    echoed = repr([(r.headers, r.query) for r in echo_api.received])
    basic = basic_header("svc", SECRETS["AR_TEST_BASIC_PASSWORD"]).removeprefix("Basic ")
    sent = [basic, SECRETS["AR_TEST_BEARER_TOKEN"], SECRETS["AR_TEST_API_KEY"], "Bearer tok-1"]
    assert all(value in echoed for value in sent)
    assert sorted(r["status"] for r in results) == ["error"] * 4 + ["success"] * 4
    written = everything_written(results, dead, log.lines)
    leaked = [
        value
        for value in [
            *SECRETS.values(),
            basic,
            *token_server.issued,
        ]
        if value in written
    ]
    assert token_server.issued
    assert leaked == []


# --- the examples -----------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "actions"
EXAMPLE_PARAMS: dict[str, dict[str, Any]] = {
    "createNoteBasic": {"contactId": "c-1", "text": "called back"},
    "sendPushApiKey": {"deviceId": "d-1", "title": "Hello"},
    "getForecastApiKeyQuery": {"city": "Lyon"},
    "openTicketBearer": {"subject": "Refund"},
    "sendSmsOAuth2": {"phone": "+33612345678", "text": "Hi"},
    "addPointsCustomAuth": {"memberId": "m-1", "points": 50},
}


@pytest.fixture
async def demo_api_url() -> AsyncIterator[str]:
    runner = web.AppRunner(make_app(), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_each_example_auth_mode_is_accepted_by_the_demo_api(
    harness: WorkerHarness, demo_api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_API_URL", demo_api_url)
    for name in EXAMPLE_PARAMS:
        source = next(EXAMPLES.glob(f"{name}.*"))
        shutil.copy(source, harness.settings.actions_dir / source.name)
    await harness.start_worker()

    for name, params in EXAMPLE_PARAMS.items():
        await harness.publish(step_event(f"e-{name}", name, params=params))
    results = {r["action"]: r for r in await harness.results(len(EXAMPLE_PARAMS))}

    assert {name: r["status_code"] for name, r in results.items()} == dict.fromkeys(
        EXAMPLE_PARAMS, "http_201"
    )
