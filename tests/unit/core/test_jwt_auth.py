"""The JWT auth modes: specs checked at load, the claims, the RFC 7523 token request."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from actionrelay.core.auth import AuthSpec, jwt_grant_request, secret_values
from actionrelay.core.jwt_auth import (
    JWT_BEARER_GRANT,
    OAuth2JwtBearer,
    SelfSignedJwt,
    jwt_claims,
)
from tests.keys import (
    SERVICE_ACCOUNT_EMAIL,
    ec_key,
    ed25519_key,
    rsa_key,
    service_account,
    service_account_text,
)

AUTH = TypeAdapter[AuthSpec](AuthSpec)
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_URL = "https://auth.example.com/token"


def grant(**fields: Any) -> OAuth2JwtBearer:
    auth = AUTH.validate_python({"type": "oauth2_jwt_bearer", **fields})
    assert isinstance(auth, OAuth2JwtBearer)
    return auth


def self_signed(**fields: Any) -> SelfSignedJwt:
    auth = AUTH.validate_python(
        {"type": "self_signed_jwt", "private_key": rsa_key().private_pem, **fields}
    )
    assert isinstance(auth, SelfSignedJwt)
    return auth


def test_a_service_account_file_gives_key_issuer_key_id_and_token_url() -> None:
    auth = grant(service_account=service_account_text(), scopes=[FCM_SCOPE])

    assert auth.key_pem() == rsa_key().private_pem
    assert (auth.issuer, auth.key_id) == (SERVICE_ACCOUNT_EMAIL, "3f8e1c0d9b7a")
    assert auth.token_url == "https://oauth2.googleapis.com/token"
    assert auth.signing_algorithm == "RS256"
    assert set(secret_values(auth)) == {service_account_text(), rsa_key().private_pem}


def test_fields_written_in_the_action_win_over_the_service_account() -> None:
    auth = grant(
        service_account=service_account_text(), token_url=TOKEN_URL, issuer="other@x", key_id="k2"
    )
    assert (auth.token_url, auth.issuer, auth.key_id) == (TOKEN_URL, "other@x", "k2")


@pytest.mark.parametrize(
    ("key", "algorithm", "expected"),
    [
        (rsa_key(), None, "RS256"),
        (rsa_key(traditional=True), None, "RS256"),  # -----BEGIN RSA PRIVATE KEY-----
        (rsa_key(), "PS256", "PS256"),
        (rsa_key(), "RS512", "RS512"),
        (ec_key("P-256"), None, "ES256"),
        (ec_key("P-384"), None, "ES384"),
        (ed25519_key(), None, "EdDSA"),
    ],
)
def test_the_algorithm_follows_the_key(key: Any, algorithm: str | None, expected: str) -> None:
    fields = {"private_key": key.private_pem, "algorithm": algorithm}
    assert self_signed(**fields).signing_algorithm == expected


SECRET_PEM = rsa_key().private_pem
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"type": "self_signed_jwt"}, "needs service_account or private_key"),
    (
        {"type": "self_signed_jwt", "private_key": SECRET_PEM, "service_account": "{}"},
        "not both",
    ),
    ({"type": "self_signed_jwt", "private_key": "not a key"}, "not an unencrypted PEM"),
    (
        {"type": "self_signed_jwt", "private_key": SECRET_PEM[:300]},
        "not an unencrypted PEM private key",
    ),
    (
        {"type": "self_signed_jwt", "private_key": SECRET_PEM, "algorithm": "ES256"},
        "algorithm ES256 does not fit an RSA key; use RS256 or RS384",
    ),
    (
        {"type": "self_signed_jwt", "private_key": ec_key().private_pem, "algorithm": "RS256"},
        "algorithm RS256 does not fit a secp256r1 EC key; use ES256",
    ),
    (
        {"type": "self_signed_jwt", "private_key": ec_key("secp256k1").private_pem},
        "RSA, EC (P-256, P-384, P-521) or Ed25519 keys only",
    ),
    ({"type": "self_signed_jwt", "private_key": SECRET_PEM, "algorithm": "HS256"}, "algorithm"),
    (
        {"type": "self_signed_jwt", "private_key": SECRET_PEM, "claims": {"exp": 1}},
        "claims: exp is set by lifetime_seconds",
    ),
    (
        {"type": "self_signed_jwt", "private_key": SECRET_PEM, "claims": {"iss": "x"}},
        "claims: iss is set by issuer",
    ),
    ({"type": "oauth2_jwt_bearer", "service_account": "{not json"}, "not a JSON service-account"),
    ({"type": "oauth2_jwt_bearer", "service_account": "[1]"}, "not a JSON service-account"),
    (
        {"type": "oauth2_jwt_bearer", "service_account": '{"private_key": "x"}'},
        "the key file has no client_email",
    ),
    (
        {"type": "oauth2_jwt_bearer", "private_key": SECRET_PEM, "issuer": "svc"},
        "needs token_url",
    ),
    (
        {"type": "oauth2_jwt_bearer", "private_key": SECRET_PEM, "token_url": TOKEN_URL},
        "needs issuer",
    ),
    (
        {"type": "oauth2_jwt_bearer", "service_account": service_account_text(token_uri=None)},
        "needs token_url (or a service_account whose file has token_uri)",
    ),
    (
        {"type": "self_signed_jwt", "private_key": SECRET_PEM, "lifetime_seconds": 0},
        "lifetime_seconds",
    ),
]


@pytest.mark.parametrize(("raw", "problem"), REFUSED)
def test_a_bad_jwt_auth_block_is_refused_without_quoting_the_key(
    raw: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        AUTH.validate_python(raw)
    messages = " | ".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in caught.value.errors()
    )
    assert problem in messages
    assert "MII" not in messages  # no part of a key


def test_grant_claims_follow_google_and_rfc_7523() -> None:
    auth = grant(service_account=service_account_text(), scopes=[FCM_SCOPE, "openid"])

    claims, headers = jwt_claims(auth, now=1_700_000_000, jti="j-1")

    assert claims == {
        "iss": SERVICE_ACCOUNT_EMAIL,
        "aud": "https://oauth2.googleapis.com/token",
        "scope": f"{FCM_SCOPE} openid",
        "iat": 1_700_000_000,
        "exp": 1_700_000_300,
    }
    assert headers == {"kid": "3f8e1c0d9b7a"}


def test_grant_claims_take_subject_audience_lifetime_and_extra_claims() -> None:
    auth = grant(
        private_key=rsa_key().private_pem,
        token_url=TOKEN_URL,
        issuer="client-7",
        subject="user@acme.test",
        audience="https://auth.example.com",
        scopes=["a"],
        scope_in="form",
        lifetime_seconds=60,
        claims={"tenant": "acme"},
    )

    claims, headers = jwt_claims(auth, now=100, jti="j-1")

    assert claims == {
        "tenant": "acme",
        "iss": "client-7",
        "sub": "user@acme.test",
        "aud": "https://auth.example.com",
        "iat": 100,
        "exp": 160,
    }
    assert headers == {}


def test_self_signed_claims_carry_a_jti_and_the_application_claims() -> None:
    auth = self_signed(claims={"application_id": "aaaaaaaa-bbbb"}, key_id="k1")

    claims, headers = jwt_claims(auth, now=100, jti="j-42")

    assert claims == {"application_id": "aaaaaaaa-bbbb", "iat": 100, "exp": 1000, "jti": "j-42"}
    assert headers == {"kid": "k1"}


@pytest.mark.parametrize(("scope_in", "form_scope"), [("claim", None), ("form", "a b")])
def test_the_token_request_is_an_rfc_7523_form_post(scope_in: str, form_scope: str | None) -> None:
    auth = grant(service_account=service_account_text(), scopes=["a", "b"], scope_in=scope_in)

    request = jwt_grant_request(auth, "h.p.s")

    assert (request.method, str(request.url)) == ("POST", "https://oauth2.googleapis.com/token")
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert request.body is not None
    form = dict(parse_qsl(request.body.decode("ascii"), strict_parsing=True))
    expected = {"grant_type": JWT_BEARER_GRANT, "assertion": "h.p.s"}
    assert form == ({**expected, "scope": form_scope} if form_scope else expected)


def test_a_service_account_in_a_json_action_file_is_a_string() -> None:
    text = orjson.dumps(service_account()).decode()  # as ${file:…} reads it, on one line
    assert grant(service_account=text).issuer == SERVICE_ACCOUNT_EMAIL


def test_a_field_left_empty_in_the_file_takes_the_service_account_value() -> None:
    auth = grant(service_account=service_account_text(), private_key=None, issuer=None)
    assert (auth.key_pem(), auth.issuer) == (rsa_key().private_pem, SERVICE_ACCOUNT_EMAIL)
