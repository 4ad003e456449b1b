"""``actionrelay actions list|test`` and ``actionrelay publish`` against real servers."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from actionrelay.settings import Settings
from tests.integration.conftest import action_file
from tests.integration.ops_support import run_cli, run_process
from tests.integration.support import RecordingApi, Reply, WorkerHarness

ALLOW_LOOPBACK = {
    "ACTIONRELAY_ALLOW_HTTP_HOSTS": "127.0.0.1",
    "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
}
SECRETS = {"TEST_SECRET": "s3cret-value-42", "TEST_PARTNER": "partner-key-77"}
SMS_PARAMS = '{"phone": "+33612345678", "text": "Hi"}'


def sms_action(url: str, auth: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "sendSms",
        "version": 3,
        "url": f"{url}/sms",
        "path": "/{country}",
        "headers": {"X-Partner": "${env:TEST_PARTNER}"},
        "query": {"locale": {"$var": "locale", "type": "string", "optional": True}},
        "body": {
            "to": {"$var": "phone", "type": "string"},
            "text": {"$var": "text", "type": "string"},
        },
        "auth": auth,
    }


async def test_actions_list_shows_each_action(settings: Settings, api: RecordingApi) -> None:
    action_file(
        settings.actions_dir,
        sms_action(api.url, {"type": "basic", "username": "u", "password": "${env:TEST_SECRET}"}),
    )
    action_file(
        settings.actions_dir,
        {
            "name": "lookup",
            "method": "GET",
            "url": "https://crm.example.com/v1",
            "auth": {"type": "api_key", "name": "key", "value": "k-123456", "in": "query"},
        },
    )
    result = await run_cli("actions", "list", "--actions", str(settings.actions_dir), env=SECRETS)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2 actions" in out
    assert f"{api.url}/sms/{{country}}" in out
    assert "https://crm.example.com/v1" in out
    assert "api_key (query key)" in out
    assert "basic" in out
    assert "country: string" in out
    assert "locale?: string" in out
    assert "GET" in out
    assert "s3cret-value-42" not in out


async def test_actions_list_reports_each_invalid_file_and_exits_1(settings: Settings) -> None:
    bad = action_file(settings.actions_dir, {"name": "bad", "url": "ftp://x", "method": "FETCH"})
    result = await run_cli("actions", "list", "--actions", str(settings.actions_dir))
    assert result.exit_code == 1
    assert f"{bad}: method:" in result.stderr
    assert f"{bad}: url: must be an absolute http:// or https:// URL" in result.stderr
    missing = await run_cli("actions", "list", "--actions", str(settings.actions_dir / "nope"))
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr


AUTH_CASES = {
    "basic": (
        {"type": "basic", "username": "svc", "password": "${env:TEST_SECRET}"},
        "Authorization",
        "Basic " + base64.b64encode(b"svc:s3cret-value-42").decode(),
    ),
    "bearer": (
        {"type": "bearer", "token": "${env:TEST_SECRET}"},
        "Authorization",
        "Bearer s3cret-value-42",
    ),
    "api-key-header": (
        {"type": "api_key", "name": "X-Api-Key", "value": "${env:TEST_SECRET}"},
        "X-Api-Key",
        "s3cret-value-42",
    ),
}


@pytest.mark.parametrize("case", sorted(AUTH_CASES))
async def test_actions_test_sends_one_real_call_and_masks_credentials(
    settings: Settings, api: RecordingApi, case: str
) -> None:
    auth, header, sent_value = AUTH_CASES[case]
    action_file(settings.actions_dir, sms_action(api.url, auth))
    api.default = Reply(201, {"messageId": "m-1", "status": "queued"}, headers={"X-Trace": "t-9"})
    result = await run_cli(
        "actions",
        "test",
        "sendSms",
        "--params",
        '{"phone": "+33612345678", "text": "Hi", "country": "fr"}',
        "--event-id",
        "try-1",
        "--actions",
        str(settings.actions_dir),
        env={**ALLOW_LOOPBACK, **SECRETS},
    )
    assert result.exit_code == 0, result.output
    [call] = api.received
    assert call.path == "/sms/fr"
    assert call.headers[header] == sent_value
    assert call.headers["X-Partner"] == "partner-key-77"
    assert call.headers["Idempotency-Key"] == "try-1"
    out = result.stdout
    assert f"POST {api.url}/sms/fr" in out
    assert "s3cret-value-42" not in out
    assert sent_value not in out
    assert "partner-key-77" not in out
    assert "***" in out
    assert '"to": "+33612345678"' in out
    assert "HTTP 201 in" in out
    assert " ms" in out
    assert "X-Trace" in out
    assert '"messageId": "m-1"' in out
    assert "success" in out


async def test_actions_test_masks_an_api_key_in_the_query(
    settings: Settings, api: RecordingApi
) -> None:
    auth = {"type": "api_key", "name": "apikey", "value": "${env:TEST_SECRET}", "in": "query"}
    action_file(settings.actions_dir, sms_action(api.url, auth))
    params = '{"phone": "+1", "text": "x", "country": "us", "locale": "en"}'
    result = await run_cli(
        "actions",
        "test",
        "sendSms",
        "--params",
        params,
        "--actions",
        str(settings.actions_dir),
        env={**ALLOW_LOOPBACK, **SECRETS},
    )
    assert result.exit_code == 0, result.output
    assert ("apikey", "s3cret-value-42") in api.received[0].query
    assert "apikey=***" in result.stdout
    assert "locale=en" in result.stdout
    assert "s3cret-value-42" not in result.stdout


async def test_actions_test_obeys_the_egress_policy(settings: Settings, api: RecordingApi) -> None:
    action_file(settings.actions_dir, sms_action(api.url, {"type": "none"}))
    args = ["actions", "test", "sendSms", "--actions", str(settings.actions_dir)]
    params = ["--params", '{"phone": "+1", "text": "x", "country": "us"}']
    env: dict[str, str] = {
        **SECRETS,
        "ACTIONRELAY_ALLOW_HTTP_HOSTS": "",
        "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS": "",
    }
    refused = await run_cli(*args, *params, env=env)
    assert refused.exit_code == 1
    assert "plain http to 127.0.0.1 is refused" in refused.stdout
    assert api.received == []

    api.default = Reply(404, {"error": "no such route"})
    answered = await run_cli(*args, *params, env={**ALLOW_LOOPBACK, **SECRETS})
    assert answered.exit_code == 1
    assert "HTTP 404" in answered.stdout
    assert "permanent" in answered.stdout

    unfit = await run_cli(*args, "--params", '{"text": 5}', env={**ALLOW_LOOPBACK, **SECRETS})
    assert unfit.exit_code == 1
    assert "missing variable 'phone'" in unfit.stderr
    assert len(api.received) == 1


async def test_publish_wait_prints_the_result(harness: WorkerHarness) -> None:
    settings = harness.settings
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    harness.api.default = Reply(200, {"ok": "yes"})
    await harness.start_worker()
    broker = ["--amqp-url", settings.amqp_url, "--queue", settings.request_queue]
    result = await run_process(
        "publish",
        "notify",
        "--params",
        '{"id": "a"}',
        "--event-id",
        "p-1",
        "--wait",
        "--timeout",
        "10",
        *broker,
    )
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    assert printed["event_id"] == "p-1"
    assert printed["status"] == "success"
    assert printed["response"] == {"ok": "yes"}
    assert "published event p-1" in result.stderr
    assert [r.headers["Idempotency-Key"] for r in harness.api.received] == ["p-1"]

    harness.api.default = Reply(404)
    failed = await run_process("publish", "notify", "--params", '{"id": "b"}', "--wait", *broker)
    assert failed.exit_code == 1
    assert orjson.loads(failed.stdout)["status_code"] == "http_404"

    await harness.stop_workers()
    nobody = await run_process(
        "publish", "notify", "--params", "{}", "--wait", "--timeout", "0.3", *broker
    )
    assert nobody.exit_code == 3
    assert "no result" in nobody.stderr
    fire_and_forget = await run_process(
        "publish", "notify", "--params", '{"id": "c"}', "--event-id", "p-3", *broker
    )
    assert fire_and_forget.exit_code == 0
    assert fire_and_forget.stdout == ""
    nowhere = ["--amqp-url", settings.amqp_url, "--queue", f"{settings.request_queue}.nowhere"]
    missing = await run_process("publish", "notify", "--params", "{}", *nowhere)
    assert missing.exit_code == 1
    assert "did not take the event" in missing.stderr
