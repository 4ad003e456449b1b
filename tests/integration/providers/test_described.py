"""Twilio, Firebase and SendGrid recipes: the requests they send, validated against the
providers' own OpenAPI descriptions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.auth_support import ProtectedApi, TokenServer, jwt_bearer_grant
from tests.integration.http.test_auth import bearer_of
from tests.integration.providers.support import basic, described, install
from tests.integration.support import Received, Reply, WorkerHarness, step_event
from tests.keys import SERVICE_ACCOUNT_EMAIL, rsa_key, service_account_text

TWILIO_SID = "AC00000000000000000000000000000000"
TWILIO_TOKEN = "twilio-auth-t0ken-1"
SENDGRID_KEY = "SG.sendgrid-key-2.abcdefgh"


@pytest.fixture
async def api() -> AsyncIterator[ProtectedApi]:
    """The provider's API; it answers 401 unless the request is authorized."""
    server = ProtectedApi()
    await server.start()
    yield server
    await server.stop()


async def send(harness: WorkerHarness, action: str, params: dict[str, Any]) -> dict[str, Any]:
    await harness.start_worker()
    await harness.publish(step_event(f"e-{action}", action, params=params))
    [result] = await harness.results(1)
    return result


async def test_twilio_sms_is_a_form_twilio_accepts(
    harness: WorkerHarness, api: ProtectedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    api.authorized = lambda r: r.headers.get("Authorization") == basic(TWILIO_SID, TWILIO_TOKEN)
    api.default = Reply(201, {"sid": "SM1", "status": "queued", "error_code": None, "to": "+3"})
    install(harness, "twilioSms", {"https://api.twilio.com": api.url})
    media = ["https://cdn.acme.example/a.png", "https://cdn.acme.example/b.png?x=1&y=2"]

    result = await send(
        harness,
        "twilioSms",
        {"phone": "+33612345678", "text": "Bonjour é & 100%", "mediaUrls": media},
    )

    assert result["status"] == "success", result["error"]
    assert result["response"] == {"sid": "SM1", "status": "queued", "error_code": None}
    [call] = api.received
    problems, body = described("twilio_messages.json", "https://api.twilio.com", call)
    assert problems == []
    assert body == {
        "To": "+33612345678",
        "From": "+15005550006",
        "Body": "Bonjour é & 100%",
        "MediaUrl": media,
    }
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_sendgrid_email_is_the_json_sendgrid_describes(
    harness: WorkerHarness, api: ProtectedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", SENDGRID_KEY)
    api.authorized = lambda r: r.headers.get("Authorization") == f"Bearer {SENDGRID_KEY}"
    api.default = Reply(202, body=b"")
    install(harness, "sendgridEmail", {"https://api.sendgrid.com": api.url})
    params = {
        "email": "ada@example.com",
        "name": "Ada",
        "profileId": "p-42",
        "subject": "Welcome",
        "text": "Hi Ada",
        "html": "<p>Hi Ada</p>",
    }

    result = await send(harness, "sendgridEmail", params)

    assert (result["status"], result["http_status"]) == ("success", 202), result["error"]
    [call] = api.received
    problems, body = described("sendgrid_mail_send.json", "https://api.sendgrid.com", call)
    assert problems == []
    assert body["personalizations"] == [
        {"to": [{"email": "ada@example.com", "name": "Ada"}], "custom_args": {"profile_id": "p-42"}}
    ]
    assert body["content"] == [
        {"type": "text/plain", "value": "Hi Ada"},
        {"type": "text/html", "value": "<p>Hi Ada</p>"},
    ]


@pytest.fixture
async def google_token_endpoint() -> AsyncIterator[TokenServer]:
    """Google's token endpoint: a token for a JWT the service account signed, no other."""
    server = TokenServer()
    await server.start()
    server.check = jwt_bearer_grant(
        rsa_key().public,
        issuer=SERVICE_ACCOUNT_EMAIL,
        audience=f"{server.url}/token",
        scope="https://www.googleapis.com/auth/firebase.messaging",
    )
    yield server
    await server.stop()


async def test_firebase_push_carries_a_token_from_the_service_account_and_fcm_json(
    harness: WorkerHarness, api: ProtectedApi, google_token_endpoint: TokenServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "firebase-service-account.json"
    key_file.write_text(service_account_text(token_uri=f"{google_token_endpoint.url}/token"))
    api.authorized = bearer_of(google_token_endpoint)
    api.default = Reply(200, {"name": "projects/acme-push/messages/0:1500415314455276%31bd"})
    install(
        harness,
        "firebasePush",
        {
            "https://fcm.googleapis.com": api.url,
            "/run/secrets/firebase-service-account.json": str(key_file),
        },
    )
    params = {
        "deviceToken": "fcm-device-token-1",
        "title": "Your order",
        "text": "has shipped",
        "data": {"orderId": "o-7", "step": "shipped"},
    }
    started = time.time()

    result = await send(harness, "firebasePush", params)

    assert result["status"] == "success", result["error"]
    assert result["response"] == {"name": "projects/acme-push/messages/0:1500415314455276%31bd"}
    assert google_token_endpoint.refused == []
    [token_call] = google_token_endpoint.calls
    [call] = api.received
    assert call.headers["Authorization"] == "Bearer tok-1"
    problems, body = described("fcm_v1_send.yaml", "https://fcm.googleapis.com", call)
    assert problems == []
    assert body["message"]["token"] == "fcm-device-token-1"
    assert body["message"]["notification"] == {"title": "Your order", "body": "has shipped"}
    assert body["message"]["data"] == {"orderId": "o-7", "step": "shipped"}
    assert call.path == "/v1/projects/acme-push/messages:send"
    assert time.time() - started < 10
    assert token_call.fields["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


# --- the descriptions are strict enough to catch what the old code sent ------------


def _received(path: str, content_type: str, body: bytes, headers: dict[str, str]) -> Received:
    all_headers = {"Content-Type": content_type, **headers}
    return Received("POST", path, path, [], all_headers, body, 0.0)


@pytest.mark.parametrize(
    ("file_name", "host", "received"),
    [
        pytest.param(
            "twilio_messages.json",
            "https://api.twilio.com",
            _received(
                f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                "application/json",
                b'{"To": "+33612345678", "Body": "Hi"}',
                {"Authorization": basic(TWILIO_SID, TWILIO_TOKEN)},
            ),
            id="twilio-json-body",
        ),
        pytest.param(
            "twilio_messages.json",
            "https://api.twilio.com",
            _received(
                f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                "application/x-www-form-urlencoded",
                b"Body=Hi",
                {"Authorization": basic(TWILIO_SID, TWILIO_TOKEN)},
            ),
            id="twilio-no-To",
        ),
        pytest.param(
            "twilio_messages.json",
            "https://api.twilio.com",
            _received(
                f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                "application/x-www-form-urlencoded",
                b"To=%2B33612345678&Body=Hi",
                {},
            ),
            id="twilio-no-credentials",
        ),
        pytest.param(
            "sendgrid_mail_send.json",
            "https://api.sendgrid.com",
            _received(
                "/v3/mail/send",
                "application/json",
                b'{"personalizations": [{"to": "ada@example.com"}], "from": {"email": "a@b.c"},'
                b' "subject": "s", "content": [{"type": "text/plain", "value": "v"}]}',
                {"Authorization": f"Bearer {SENDGRID_KEY}"},
            ),
            id="sendgrid-to-not-a-list",
        ),
        pytest.param(
            "fcm_v1_send.yaml",
            "https://fcm.googleapis.com",
            _received(
                "/v1/projects/acme-push/messages:send",
                "application/json",
                b'{"message": {"token": "t", "data": {"orderId": 7}}}',
                {"Authorization": "Bearer tok-1"},
            ),
            id="fcm-data-not-strings",
        ),
    ],
)
def test_the_descriptions_refuse_a_request_the_provider_refuses(
    file_name: str, host: str, received: Received
) -> None:
    problems, _ = described(file_name, host, received)
    assert problems != []
