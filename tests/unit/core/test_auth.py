"""Auth specs, and the token requests and answers they make and read."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from actionrelay.core.auth import (
    AuthSpec,
    BasicAuth,
    CustomAuth,
    OAuth2ClientCredentials,
    TokenRequest,
    basic_credentials,
    read_token,
    secret_values,
    token_request,
)

AUTH = TypeAdapter[AuthSpec](AuthSpec)
TOKEN_URL = "https://auth.example.com/oauth/token"
FORM = "application/x-www-form-urlencoded"
# Every character that means something in a form body or a URL.
AWKWARD = "a b+c&d=e%f/g:h?i@j;k,l#m$n'o(p)q*r!s~t\u00e9"


def oauth2(**fields: Any) -> OAuth2ClientCredentials:
    base = {"type": "oauth2_client_credentials", "token_url": TOKEN_URL, "client_id": "journeys"}
    auth = AUTH.validate_python({"client_secret": "s3cret", **base, **fields})
    assert isinstance(auth, OAuth2ClientCredentials)
    return auth


def custom(**fields: Any) -> CustomAuth:
    auth = AUTH.validate_python({"type": "custom", "token_url": TOKEN_URL, **fields})
    assert isinstance(auth, CustomAuth)
    return auth


def form_of(request: TokenRequest) -> dict[str, str]:
    assert request.body is not None
    pairs = parse_qsl(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    return dict(pairs)


# --- specs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"type": "basic", "username": "a:b", "password": "p"}, "username"),
        ({"type": "basic", "username": "a"}, "password"),
        ({"type": "api_key", "name": "k", "value": "v", "in": "cookie"}, "in"),
        ({"type": "bearer"}, "token"),
        (
            {"type": "oauth2_client_credentials", "client_id": "c", "client_secret": "s"},
            "token_url",
        ),
        ({"type": "custom", "token_url": TOKEN_URL, "send_as": "header"}, "needs send_name"),
        ({"type": "custom", "token_url": TOKEN_URL, "send_as": "query"}, "needs send_name"),
        ({"type": "custom", "token_url": TOKEN_URL, "token_path": "$.token"}, "json://path"),
        ({"type": "custom", "token_url": TOKEN_URL, "expires_in_path": "ttl"}, "json://path"),
        ({"type": "custom", "token_url": TOKEN_URL, "cache_seconds": 0}, "cache_seconds"),
        ({"type": "custom", "token_url": TOKEN_URL, "method": "PUT"}, "method"),
        ({"type": "kerberos"}, "type"),
    ],
)
def test_invalid_auth_specs_are_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        AUTH.validate_python(raw)


def test_api_key_goes_in_the_header_unless_told_otherwise() -> None:
    spec = AUTH.validate_python({"type": "api_key", "name": "X-Key", "value": "v"})
    assert spec.type == "api_key"
    assert spec.location == "header"


def test_basic_credentials_follow_rfc_7617() -> None:
    auth = BasicAuth(type="basic", username="Aladdin", password="open sesame")
    assert basic_credentials(auth) == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


@pytest.mark.parametrize(
    ("raw", "secrets"),
    [
        (
            {"type": "basic", "username": "Aladdin", "password": "open sesame"},
            {"open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
        ),
        ({"type": "api_key", "name": "k", "value": "key-1"}, {"key-1"}),
        ({"type": "bearer", "token": "tok-static"}, {"tok-static"}),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": TOKEN_URL,
                "client_id": "journeys",
                "client_secret": "s3cret",
            },
            {"s3cret"},
        ),
        (
            {
                "type": "custom",
                "token_url": TOKEN_URL,
                "headers": {"X-Key": "hdr-secret"},
                "body": {"user": "svc", "password": "body-secret", "tries": 3},
            },
            # Constants of a token request are no credentials: a credential there is
            # given by reference, and references are secrets (test_references.py).
            set(),
        ),
        ({"type": "none"}, set()),
    ],
)
def test_secret_values_are_every_credential_of_a_spec(
    raw: dict[str, Any], secrets: set[str]
) -> None:
    assert set(secret_values(AUTH.validate_python(raw))) == secrets


# --- token requests ---------------------------------------------------------------


def test_client_credentials_request_is_a_form_post_per_rfc_6749() -> None:
    request = token_request(oauth2(scopes=["sms:send", "contacts:write"], audience="https://x"))

    assert (request.method, str(request.url)) == ("POST", TOKEN_URL)
    assert request.headers == {"Content-Type": FORM}
    assert form_of(request) == {
        "grant_type": "client_credentials",
        "client_id": "journeys",
        "client_secret": "s3cret",
        "scope": "sms:send contacts:write",
        "audience": "https://x",
    }
    assert request.body is not None
    assert b"scope=sms%3Asend+contacts%3Awrite" in request.body  # space-delimited scopes


def test_client_credentials_without_scope_or_audience_sends_neither() -> None:
    assert set(form_of(token_request(oauth2()))) == {"grant_type", "client_id", "client_secret"}


def test_form_values_are_percent_encoded_so_that_they_decode_to_themselves() -> None:
    request = token_request(oauth2(client_id=AWKWARD, client_secret=AWKWARD))

    assert request.body is not None
    body = request.body.decode("ascii")
    assert form_of(request)["client_secret"] == AWKWARD
    # application/x-www-form-urlencoded: '+' for space, %XX for everything else reserved.
    encoded = body.split("client_secret=")[1].split("&")[0]
    assert encoded.startswith("a+b%2Bc%26d%3De%25f%2Fg%3Ah%3Fi%40j%3Bk%2Cl%23m%24n")
    assert set(encoded) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%+-._~*"
    )


def test_custom_post_json_sends_headers_and_body_as_json() -> None:
    auth = custom(headers={"X-Client": "journeys"}, body={"user": "svc", "tries": 3, "on": True})
    request = token_request(auth)

    assert request.method == "POST"
    assert request.headers == {"X-Client": "journeys", "Content-Type": "application/json"}
    assert request.body is not None
    assert orjson.loads(request.body) == {"user": "svc", "tries": 3, "on": True}


def test_custom_post_form_sends_a_form_body() -> None:
    request = token_request(custom(body={"user": "svc", "key": AWKWARD}, body_format="form"))

    assert request.headers == {"Content-Type": FORM}
    assert form_of(request) == {"user": "svc", "key": AWKWARD}


def test_custom_content_type_given_by_the_action_wins() -> None:
    auth = custom(headers={"Content-Type": "application/vnd.auth+json"}, body={"a": 1})
    assert token_request(auth).headers == {"Content-Type": "application/vnd.auth+json"}


def test_custom_get_sends_the_fields_as_query_and_no_body() -> None:
    request = token_request(custom(method="GET", body={"user": "svc", "key": "a&b"}))

    assert request.method == "GET"
    assert request.body is None
    assert dict(request.url.query) == {"user": "svc", "key": "a&b"}
    assert "Content-Type" not in request.headers


# --- token answers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "body", "expected"),
    [
        pytest.param(
            oauth2(), {"access_token": "t1", "expires_in": 120}, ("t1", 120.0), id="oauth2"
        ),
        pytest.param(oauth2(), {"access_token": "t1"}, ("t1", 3600.0), id="oauth2-no-expiry"),
        pytest.param(
            oauth2(default_expires_in_seconds=90),
            {"access_token": "t1", "expires_in": "120"},
            ("t1", 90.0),
            id="oauth2-expiry-not-a-number",
        ),
        pytest.param(
            oauth2(), {"access_token": "t1", "expires_in": True}, ("t1", 3600.0), id="bool-expiry"
        ),
        pytest.param(
            custom(token_path="json://data.token", expires_in_path="json://data.ttl"),
            {"data": {"token": "t2", "ttl": 30.5}},
            ("t2", 30.5),
            id="custom-json-paths",
        ),
        pytest.param(
            custom(), {"access_token": "t3", "expires_in": 5}, ("t3", 3600.0), id="custom-no-path"
        ),
        pytest.param(
            custom(expires_in_path="json://expires_in", cache_seconds=600),
            {"access_token": "t4", "expires_in": 5},
            ("t4", 600.0),
            id="cache-seconds-wins",
        ),
        pytest.param(
            custom(token_path="response"), b"  raw-token-5\n", ("raw-token-5", 3600.0), id="whole"
        ),
        pytest.param(
            custom(token_path="response", cache_seconds=45),
            b"raw-token-6",
            ("raw-token-6", 45.0),
            id="whole-cached",
        ),
    ],
)
def test_read_token(
    auth: OAuth2ClientCredentials | CustomAuth, body: Any, expected: tuple[str, float]
) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    assert read_token(auth, raw) == expected


@pytest.mark.parametrize(
    ("auth", "body", "problem"),
    [
        (oauth2(), b"<html>", "not JSON"),
        (oauth2(), b'{"token": "t"}', "no token at json://access_token"),
        (oauth2(), b'{"access_token": 42}', "no token at json://access_token"),
        (oauth2(), b'{"access_token": ""}', "no token"),
        (custom(token_path="json://data.token"), b'{"data": "t"}', "no token at json://data.token"),
        (custom(token_path="response"), b"  \n", "no token at response"),
    ],
)
def test_read_token_says_what_is_missing(
    auth: OAuth2ClientCredentials | CustomAuth, body: bytes, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        read_token(auth, body)
