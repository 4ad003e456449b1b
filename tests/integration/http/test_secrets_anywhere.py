"""Secrets by reference in a URL path, a query and a body: sent, and never written
anywhere else; constants written in clear stay readable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
import pytest

from tests.integration.auth_support import TokenServer
from tests.integration.cli.test_action_commands import ALLOW_LOOPBACK
from tests.integration.http.test_auth import everything_written
from tests.integration.ops_support import run_cli
from tests.integration.support import Received, RecordingApi, Reply, WorkerHarness, step_event

SECRETS = {
    "AR_PATH_SECRET": "p4th-S3cret~ä+x",
    "AR_QUERY_SECRET": "qu3ry S3cret&=ü",
    "AR_BODY_SECRET": 'b0dy-S3cret"é',
    "AR_HEADER_SECRET": "h3ader-S3cret",
    "AR_TOKEN_KEY": "t0ken-endp0int-key",
}


def forms(secret: str) -> list[str]:
    """The secret as written and as a URL, a form or a JSON document carries it."""
    return [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        orjson.dumps(secret).decode()[1:-1],
    ]


class FullEchoApi(RecordingApi):
    """An API that repeats everything it got; 400 for paths ending in /fail."""

    def reply_for(self, received: Received) -> Reply:
        echo = {
            "body": received.body.decode(),
            "raw_path": received.raw_path,
            "path": received.path,
            "query": received.query,
            "headers": {str(k): v for k, v in received.headers.items()},
        }
        return Reply(400 if received.path.endswith("/fail") else 200, {"you_sent": echo})


@pytest.fixture
async def api() -> AsyncIterator[FullEchoApi]:
    server = FullEchoApi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    server.fail_status = 503
    await server.start()
    yield server
    await server.stop()


def actions(api: FullEchoApi, token_server: TokenServer) -> list[dict[str, Any]]:
    query = {"key": "${env:AR_QUERY_SECRET}", "source": "journeys"}
    body = {"apiSecret": "${env:AR_BODY_SECRET}", "grant": "token", "note": "plain constant"}
    return [
        {  # the secret in the URL, a form body
            "name": "leakyForm",
            "url": f"{api.url}/hooks/${{env:AR_PATH_SECRET}}",
            "path": "/{outcome}",
            "query": query,
            "headers": {"X-Partner": "${env:AR_HEADER_SECRET}"},
            "body_format": "form",
            "body": body,
            "retry": {"max_attempts": 1},
        },
        {  # the secret in the dynamic path, a JSON body
            "name": "leakyJson",
            "url": f"{api.url}/hooks",
            "path": "/${env:AR_PATH_SECRET}/{outcome}",
            "query": query,
            "body": body,
            "retry": {"max_attempts": 1},
        },
        {  # a token endpoint that fails, asked with a constant that is an ordinary word
            "name": "tokenDown",
            "url": f"{api.url}/hooks/x",
            "auth": {
                "type": "custom",
                "token_url": f"{token_server.url}/oauth/token",
                "body": {"grant": "token", "key": "${env:AR_TOKEN_KEY}"},
                "body_format": "form",
            },
            "retry": {"max_attempts": 1},
        },
    ]


async def test_secrets_in_path_query_and_body_appear_in_no_result_dead_letter_or_log(
    harness: WorkerHarness,
    api: FullEchoApi,
    token_server: TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for action in actions(api, token_server):
        harness.action(action)
    process = await harness.spawn_worker(log_level="debug")
    await harness.wait_consuming(1)

    for name in ("leakyForm", "leakyJson"):
        for outcome in ("ok", "fail"):
            params = {"outcome": outcome}
            await harness.publish(step_event(f"{name}-{outcome}", name, params=params))
    await harness.publish(step_event("tokenDown-1", "tokenDown"))
    results = {r["event_id"]: r for r in await harness.results(5)}
    dead = await harness.dead_letters(3)
    await harness.terminate(process)
    log = await harness.process_log(process)

    echoed = repr([(r.raw_path, r.query, r.body, r.headers) for r in api.received])
    assert all(
        any(f in echoed for f in forms(v)) for k, v in SECRETS.items() if k != "AR_TOKEN_KEY"
    )
    assert [r["status"] for r in results.values()].count("success") == 2
    written = everything_written(list(results.values()), dead, log.lines)
    leaked = {name: f for name, value in SECRETS.items() for f in forms(value) if f in written}
    assert leaked == {}
    # What is not a secret stays as it was written.
    form_echo = results["leakyForm-ok"]["response"]["you_sent"]
    assert "grant=token&note=plain+constant" in form_echo["body"]
    assert ["source", "journeys"] in form_echo["query"]
    json_echo = results["leakyJson-ok"]["response"]["you_sent"]
    assert orjson.loads(json_echo["body"])["note"] == "plain constant"
    assert json_echo["raw_path"] == "/hooks/***/ok"
    assert results["tokenDown-1"]["error"]["message"] == (
        f"action tokenDown: token endpoint {token_server.url}/oauth/token answered HTTP 503"
    )
    assert "answered HTTP 400" in results["leakyJson-fail"]["error"]["message"]


@pytest.mark.parametrize("name", ["leakyForm", "leakyJson"])
async def test_actions_test_shows_the_request_without_its_secrets(
    harness: WorkerHarness,
    api: FullEchoApi,
    token_server: TokenServer,
    name: str,
) -> None:
    for action in actions(api, token_server):
        harness.action(action)
    actions_dir = str(harness.settings.actions_dir)

    shown = await run_cli(
        "actions", "test", name, "--params", '{"outcome": "fail"}', "--actions", actions_dir,
        env={**ALLOW_LOOPBACK, **SECRETS},
    )  # fmt: skip
    listed = await run_cli("actions", "list", "--actions", actions_dir, env=SECRETS)

    assert shown.exit_code == 1, shown.output
    assert "HTTP 400" in shown.stdout
    assert len(api.received) == 1
    out = shown.output + listed.output
    leaked = {k: f for k, value in SECRETS.items() for f in forms(value) if f in out}
    assert leaked == {}
    assert "***" in shown.stdout
    assert "plain constant" in shown.stdout
    assert "grant=token" in shown.stdout if name == "leakyForm" else '"grant": "token"' in out
