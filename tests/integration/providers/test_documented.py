"""Recipes of providers without a description here: the request each sends, checked
against the fields, headers and encoding the provider documents."""

from __future__ import annotations

import base64
import time
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import orjson
import pytest
from standardwebhooks import Webhook

from tests.integration.providers.support import basic, install
from tests.integration.support import Received, RecordingApi, Reply, WorkerHarness, step_event
from tests.keys import rsa_key

FORM = "application/x-www-form-urlencoded"


async def send(
    harness: WorkerHarness, action: str, params: dict[str, Any], *, results: int = 1
) -> dict[str, Any]:
    await harness.start_worker()
    await harness.publish(step_event(f"e-{action}", action, params=params))
    *_, result = await harness.results(results)
    return result


def form(call: Received) -> list[tuple[str, str]]:
    assert call.headers["Content-Type"] == FORM
    return parse_qsl(call.body.decode("ascii"), strict_parsing=True)


async def test_vonage_sms_sends_its_keys_in_a_form(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VONAGE_API_KEY", "a1b2c3d4")
    monkeypatch.setenv("VONAGE_API_SECRET", "Vonage-Secr3t")
    api.default = Reply(200, {"message-count": "1", "messages": [{"status": "0", "to": "4477"}]})
    install(harness, "vonageSms", {"https://rest.nexmo.com": api.url})

    result = await send(harness, "vonageSms", {"phone": "447700900000", "text": "Héllo"})

    assert result["status"] == "success", result["error"]
    [call] = api.received
    assert (call.method, call.path) == ("POST", "/sms/json")
    assert form(call) == [
        ("api_key", "a1b2c3d4"),
        ("api_secret", "Vonage-Secr3t"),
        ("from", "AcmeShop"),
        ("to", "447700900000"),
        ("text", "Héllo"),
        ("type", "unicode"),
    ]


async def test_vonage_messages_carries_a_jwt_signed_with_the_application_key(
    harness: WorkerHarness, api: RecordingApi, tmp_path: Path
) -> None:
    key_file = tmp_path / "vonage-private.key"
    key_file.write_text(rsa_key().private_pem)
    api.default = Reply(202, {"message_uuid": "aaaaaaaa-bbbb"})
    install(
        harness,
        "vonageMessagesSms",
        {"https://api.nexmo.com": api.url, "/run/secrets/vonage-private.key": str(key_file)},
    )

    result = await send(harness, "vonageMessagesSms", {"phone": "447700900000", "text": "Hi"})

    assert result["status"] == "success", result["error"]
    assert result["response"] == {"message_uuid": "aaaaaaaa-bbbb"}
    [call] = api.received
    token = call.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token,
        rsa_key().public,  # type: ignore[arg-type]
        algorithms=["RS256"],
        options={"require": ["iat", "exp", "jti"]},
    )
    assert claims["application_id"] == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["exp"] - claims["iat"] == 900
    assert call.path == "/v1/messages"
    assert call.json() == {
        "message_type": "text",
        "channel": "sms",
        "to": "447700900000",
        "from": "AcmeShop",
        "text": "Hi",
    }


async def test_mailgun_email_is_multipart_with_one_to_field_per_address(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILGUN_API_KEY", "key-mailgun-0042")
    api.default = Reply(200, {"id": "<2024.1@mg.acme.example>", "message": "Queued. Thank you."})
    install(harness, "mailgunEmail", {"https://api.mailgun.net": api.url})
    params = {"emails": ["ada@example.com", "bob@example.com"], "subject": "Hi", "text": "Line"}

    result = await send(harness, "mailgunEmail", params)

    assert result["status"] == "success", result["error"]
    [call] = api.received
    assert call.path == "/v3/mg.acme.example/messages"
    assert call.headers["Authorization"] == basic("api", "key-mailgun-0042")
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {call.headers['Content-Type']}\r\n\r\n".encode() + call.body
    )
    parts = [
        (p.get_param("name", header="content-disposition"), p.get_payload(decode=True))
        for p in message.iter_parts()
    ]
    assert parts == [
        ("from", b"Acme <news@mg.acme.example>"),
        ("to", b"ada@example.com"),
        ("to", b"bob@example.com"),
        ("subject", b"Hi"),
        ("text", b"Line"),
        ("o:tag", b"journeys"),
    ]


async def test_onesignal_push_targets_the_profile_with_a_key_header(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONESIGNAL_API_KEY", "os_v2_app_key0042")
    api.default = Reply(200, {"id": "b98881cc-1e94-4366-bbd9-db8f3429292b"})
    install(harness, "onesignalPush", {"https://api.onesignal.com": api.url})

    result = await send(harness, "onesignalPush", {"profileId": "p-42", "title": "T", "text": "B"})

    assert result["status"] == "success", result["error"]
    [call] = api.received
    assert (call.path, call.query) == ("/notifications", [("c", "push")])
    assert call.headers["Authorization"] == "Key os_v2_app_key0042"
    assert call.headers["Content-Type"] == "application/json"
    assert call.json() == {
        "app_id": "00000000-0000-4000-8000-000000000000",
        "target_channel": "push",
        "include_aliases": {"external_id": ["p-42"]},
        "headings": {"en": "T"},
        "contents": {"en": "B"},
    }


async def test_slack_message_is_a_form_with_the_bot_token(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-0042-slack")
    api.default = Reply(200, {"ok": True, "channel": "C0123456789", "ts": "1503435956.000247"})
    install(harness, "slackMessage", {"https://slack.com": api.url})

    result = await send(harness, "slackMessage", {"text": "Order *o-7* shipped"})

    assert result["status"] == "success", result["error"]
    assert result["response"]["ok"] is True
    [call] = api.received
    assert call.path == "/api/chat.postMessage"
    assert call.headers["Authorization"] == "Bearer xoxb-0042-slack"
    assert form(call) == [
        ("channel", "C0123456789"),
        ("text", "Order *o-7* shipped"),
        ("unfurl_links", "false"),
    ]


async def test_discord_webhook_has_its_token_in_the_path_and_never_shows_it(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "dIsC0rd-w3bhook-T0ken_x"
    monkeypatch.setenv("DISCORD_WEBHOOK_TOKEN", token)
    api.script(Reply(400, {"message": f"Invalid Webhook Token {token}", "code": 50027}))
    install(harness, "discordWebhook", {"https://discord.com": api.url})

    await harness.start_worker()
    await harness.publish(step_event("e-d", "discordWebhook", params={"text": "@everyone hi"}))
    [result] = await harness.results(1)
    [dead] = await harness.dead_letters(1)

    [call] = api.received
    assert call.path == f"/api/webhooks/123456789012345678/{token}"
    assert call.query == [("wait", "true")]
    assert call.json() == {
        "content": "@everyone hi",
        "username": "Journeys",
        "allowed_mentions": {"parse": []},
    }
    assert (
        result["error"]["response_excerpt"]
        == '{"message":"Invalid Webhook Token ***","code":50027}'
    )
    written = orjson.dumps(result).decode() + repr(dead.headers) + dead.body.decode()
    assert token not in written


async def test_pagerduty_event_sends_the_routing_key_in_the_body(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0UT1NGKEY0000000000000000000042")
    api.default = Reply(202, {"status": "success", "message": "Event processed", "dedup_key": "d"})
    install(harness, "pagerdutyEvent", {"https://events.pagerduty.com": api.url})
    params = {"summary": "Journey stuck", "severity": "warning", "details": {"journey": "w"}}

    result = await send(harness, "pagerdutyEvent", params)

    assert (result["status"], result["http_status"]) == ("success", 202), result["error"]
    [call] = api.received
    assert call.path == "/v2/enqueue"
    assert call.json() == {
        "routing_key": "R0UT1NGKEY0000000000000000000042",
        "event_action": "trigger",
        "payload": {
            "summary": "Journey stuck",
            "source": "journeys",
            "severity": "warning",
            "custom_details": {"journey": "w"},
        },
    }


async def test_customer_webhook_is_signed_and_a_retry_keeps_its_id(
    harness: WorkerHarness, api: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "whsec_" + base64.b64encode(b"customer-shared-secret-32-bytes!").decode()
    monkeypatch.setenv("CUSTOMER_WEBHOOK_SECRET", secret)
    api.script(Reply(503, {"error": "busy"}))
    retry = "retry: {schedule_seconds: [1.1], jitter: 0}"  # the next second: a new timestamp
    install(
        harness,
        "customerWebhook",
        {"https://hooks.customer.example": api.url, "timeout_seconds: 10": retry},
    )

    result = await send(harness, "customerWebhook", {"profileId": "p-42"}, results=1)

    assert (result["status"], result["attempts"]) == ("success", 2), result["error"]
    first, second = api.received
    receiver = Webhook(secret)
    for call in (first, second):
        assert receiver.verify(call.body, call.headers) == {
            "type": "journey.step",
            "profile_id": "p-42",
        }
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "e-customerWebhook"
    assert first.headers["webhook-timestamp"] < second.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
