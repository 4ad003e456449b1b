"""Signed requests (``signing:``), per the Standard Webhooks specification.

Pure: the spec and the headers. ``http/client.py`` signs each attempt as it
sends it, so the timestamp is the attempt's own and a receiver can reject
replays older than its tolerance (5 minutes in the reference libraries).

    webhook-id:        the step event's event_id: the same on every attempt and
                       every retry, so a receiver can drop duplicates
    webhook-timestamp: Unix seconds when the attempt is sent
    webhook-signature: v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every such secret, not one
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64  # the specification's range


def _key_bytes(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"secret: must be {SECRET_PREFIX} followed by base64") from None


class StandardWebhooks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["standard_webhooks"]
    secret: SecretStr = Field(description="whsec_<base64 of 24 to 64 random bytes>, by reference.")

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        size = len(_key_bytes(value.get_secret_value()))
        if not MIN_KEY_BYTES <= size <= MAX_KEY_BYTES:
            raise ValueError(
                f"secret: the key is {size} bytes; Standard Webhooks keys are "
                f"{MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"
            )
        return value

    def secret_values(self) -> list[str]:
        secret = self.secret.get_secret_value()
        return [secret, secret.removeprefix(SECRET_PREFIX)]


SigningSpec = StandardWebhooks


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    spec: SigningSpec, message_id: str, timestamp: int, body: bytes | None
) -> dict[str, str]:
    """The three headers of one attempt sent at ``timestamp`` (Unix seconds)."""
    key = _key_bytes(spec.secret.get_secret_value())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body or b""),
    }
