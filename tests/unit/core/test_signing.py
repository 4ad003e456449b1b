"""Signed requests per Standard Webhooks: the spec, the headers, a receiver's check."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from actionrelay.core.signing import StandardWebhooks, signed_headers
from tests.unit.support import define, rejection

# The test vector of the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec(secret: str = SPEC_SECRET) -> StandardWebhooks:
    return StandardWebhooks(type="standard_webhooks", secret=secret)


def test_the_signature_matches_the_specification_test_vector() -> None:
    headers = signed_headers(spec(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


@pytest.mark.parametrize(
    ("message_id", "body"),
    [("e-9f2", b'{"to": "+33612345678"}'), ("évènement 1", b"a=1&b=%C3%A9"), ("e-3", None)],
)
def test_the_reference_library_verifies_what_is_signed(message_id: str, body: bytes | None) -> None:
    headers = signed_headers(spec(), message_id, int(time.time()), body)
    Webhook(SPEC_SECRET).verify(body or b"", headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify((body or b"") + b" ", headers, json_parse=False)


def test_an_old_signature_is_refused_by_a_receiver() -> None:
    headers = signed_headers(spec(), "e-1", int(time.time()) - 600, b"{}")
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SPEC_SECRET).verify(b"{}", headers, json_parse=False)


def _secret(size: int) -> str:
    return "whsec_" + base64.b64encode(b"k" * size).decode()


@pytest.mark.parametrize(
    ("signing", "problem"),
    [
        ({"type": "standard_webhooks", "secret": "whsec_not base64!"}, "followed by base64"),
        ({"type": "standard_webhooks", "secret": _secret(16)}, "the key is 16 bytes"),
        ({"type": "standard_webhooks", "secret": _secret(65)}, "24 to 64 bytes"),
        ({"type": "standard_webhooks"}, "secret"),
        ({"type": "hmac", "secret": _secret(32)}, "type"),
    ],
)
def test_a_bad_signing_block_is_refused(signing: dict[str, Any], problem: str) -> None:
    assert problem in rejection(signing=signing)


def test_a_secret_without_its_prefix_is_accepted_and_both_forms_are_secrets() -> None:
    bare = _secret(32).removeprefix("whsec_")
    action = define(signing={"type": "standard_webhooks", "secret": bare})
    assert action.signing is not None
    assert action.signing.secret_values() == [bare, bare]
    assert spec().secret_values() == [SPEC_SECRET, SPEC_SECRET.removeprefix("whsec_")]
