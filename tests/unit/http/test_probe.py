"""What ``actions test`` shows of a request: credentials masked, form fields readable."""

from __future__ import annotations

from typing import Any

import pytest

from actionrelay.core.payload import build_request
from actionrelay.core.secret import Redactor
from actionrelay.http.probe import auth_mode, shown_request
from tests.keys import ec_key, service_account_text
from tests.unit.support import define

SIGNING = {"type": "standard_webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


@pytest.mark.parametrize(
    ("auth", "mode", "authorization"),
    [
        (
            {"type": "oauth2_jwt_bearer", "service_account": service_account_text()},
            "oauth2 jwt bearer (RS256)",
            "***",
        ),
        (
            {"type": "self_signed_jwt", "private_key": ec_key().private_pem},
            "self-signed jwt (ES256)",
            "***",
        ),
        ({"type": "basic", "username": "u", "password": "pw-1234"}, "basic", "***"),
        ({"type": "none"}, "none", None),
    ],
)
def test_each_auth_mode_is_named_and_its_credential_masked(
    auth: dict[str, Any], mode: str, authorization: str | None
) -> None:
    action = define(auth=auth)
    shown = shown_request(build_request(action, {}, "e-1"), action.auth, Redactor())
    assert auth_mode(action.auth) == mode
    assert shown.headers.get("Authorization") == authorization  # the header is masked whole


def test_a_form_body_is_shown_field_by_field_with_secrets_masked() -> None:
    action = define(body_format="form", body={"To": "+336", "key": "k3y-secret", "n": [1, 2]})
    request = build_request(action, {}, "e-1")

    shown = shown_request(request, action.auth, Redactor(["k3y-secret"]))

    assert shown.body == "To=+336\nkey=***\nn=1\nn=2"


def test_a_signed_request_shows_its_webhook_headers() -> None:
    action = define(signing=SIGNING)
    shown = shown_request(build_request(action, {}, "e-7"), action.auth, Redactor(), signed=True)
    assert shown.headers["webhook-id"] == "e-7"
    assert shown.headers["webhook-signature"].startswith("v1,")
