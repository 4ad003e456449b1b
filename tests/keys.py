"""Signing keys made for the tests, and Google service-account files that hold them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

SERVICE_ACCOUNT_EMAIL = "journeys@acme-push.iam.gserviceaccount.com"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public: PublicKeyTypes


def _pair(key: PrivateKeyTypes, traditional: bool = False) -> KeyPair:
    layout = serialization.PrivateFormat.TraditionalOpenSSL if traditional else None
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        layout or serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(pem.decode(), key.public_key())


@cache
def rsa_key(traditional: bool = False) -> KeyPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), traditional)


@cache
def ec_key(curve: str = "P-256") -> KeyPair:
    curves: dict[str, ec.EllipticCurve] = {
        "P-256": ec.SECP256R1(),
        "P-384": ec.SECP384R1(),
        "secp256k1": ec.SECP256K1(),
    }
    return _pair(ec.generate_private_key(curves[curve]))


@cache
def ed25519_key() -> KeyPair:
    return _pair(ed25519.Ed25519PrivateKey.generate())


def service_account(
    token_uri: str = "https://oauth2.googleapis.com/token", **fields: Any
) -> dict[str, Any]:
    """A service-account key file as the Google Cloud console hands it out."""
    return {
        "type": "service_account",
        "project_id": "acme-push",
        "private_key_id": "3f8e1c0d9b7a",
        "private_key": rsa_key().private_pem,
        "client_email": SERVICE_ACCOUNT_EMAIL,
        "client_id": "104729",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        **fields,
    }


def service_account_text(**fields: Any) -> str:
    return orjson.dumps(service_account(**fields), option=orjson.OPT_INDENT_2).decode()
