"""``${env:NAME}`` and ``${file:/path}`` references in action files."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrelay.catalog.loader import References, expand_references, load_action
from actionrelay.core.errors import CatalogError

ENV = {"HOST": "https://api.test", "TOKEN": "t0k3n-value"}


@pytest.mark.parametrize(
    ("raw", "expanded"),
    [
        ("${env:HOST}/v1", "https://api.test/v1"),
        ("${env:UNSET:-http://localhost:8080}/x", "http://localhost:8080/x"),
        ("${env:HOST:-ignored}", "https://api.test"),
        ({"a": ["${env:TOKEN}", 3]}, {"a": ["t0k3n-value", 3]}),
        ("no reference", "no reference"),
        ("$HOST and ${HOST}", "$HOST and ${HOST}"),
    ],
)
def test_expand(raw: object, expanded: object) -> None:
    refs = References(ENV)
    assert refs.expand(raw) == expanded
    assert refs.missing == []


def test_values_in_credential_sections_are_secrets(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-secret-1\n")
    raw = {
        "url": "${env:HOST}/x",
        "headers": {"X-Key": "${env:TOKEN}"},
        "auth": {"type": "bearer", "token": f"${{file:{key_file}}}"},
    }
    refs = References(ENV)
    expanded = expand_references(raw, refs)
    assert expanded["auth"]["token"] == "file-secret-1"
    assert sorted(refs.secrets) == ["file-secret-1", "t0k3n-value"]


def test_secrets_of_an_action_include_its_auth_values(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "name: a\nurl: https://x.test\nauth: {type: basic, username: u, password: '${env:PW}'}\n"
    )
    action, secrets = load_action(path, environ={"PW": "hunter2-pw"})
    assert action.auth.type == "basic"
    assert "hunter2-pw" in secrets


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name: a\nurl: ${env:NOPE_URL}/x\n", "environment variable NOPE_URL"),
        (
            "name: a\nurl: https://x.test\nheaders: {K: '${file:/nonexistent/k}'}\n",
            "/nonexistent/k",
        ),
    ],
)
def test_missing_secret_names_file_action_and_secret(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_action(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "action a" in message
    assert named in message


# --- which resolved values are secrets ------------------------------------------

SECRET_ENV = {
    "HOST": "https://api.test",
    "BASE": "https://api.test/base/p4th",
    "TOKEN": "t0k3n-value",
    "HOOK": "hook/T0K3N",
    "CERT": "/run/secrets/client.crt",
}


@pytest.mark.parametrize(
    ("raw", "secrets"),
    [
        pytest.param({"body": {"api_key": "${env:TOKEN}"}}, ["t0k3n-value"], id="body"),
        pytest.param({"body": {"a": ["x ${env:TOKEN}"]}}, ["t0k3n-value"], id="body-list"),
        pytest.param({"query": {"key": "${env:TOKEN}"}}, ["t0k3n-value"], id="query"),
        pytest.param({"headers": {"X": "Key ${env:TOKEN}"}}, ["t0k3n-value"], id="header"),
        pytest.param({"path": "/${env:TOKEN}/{id}"}, ["t0k3n-value"], id="path"),
        pytest.param({"url": "${env:HOST}/v1"}, [], id="url-origin"),
        pytest.param({"url": "${env:BASE}/v1"}, ["/base/p4th"], id="url-origin-and-path"),
        pytest.param({"url": "https://h.test/hooks/${env:HOOK}"}, ["hook/T0K3N"], id="url-path"),
        pytest.param(
            {"auth": {"token_url": "${env:HOST}/token", "body": {"k": "${env:TOKEN}"}}},
            ["t0k3n-value"],
            id="auth-token-url-and-body",
        ),
        pytest.param({"tls": {"client_cert": "${env:CERT}"}}, [], id="tls-file-name"),
        pytest.param({"body": {"k": "${env:UNSET:-demo-value}"}}, [], id="default-in-the-file"),
        pytest.param({"body": {"grant": "token", "n": 3}}, [], id="constants"),
    ],
)
def test_every_resolved_value_is_a_secret_except_addresses_files_and_defaults(
    raw: dict[str, object], secrets: list[str]
) -> None:
    refs = References(SECRET_ENV)
    expand_references(raw, refs)
    assert refs.secrets == secrets
    assert refs.missing == []


def test_a_reference_in_the_path_is_percent_encoded_and_keeps_its_braces_out() -> None:
    refs = References({"T": "a b/{c}?d#e%"})
    assert expand_references({"path": "/x/${env:T}/{id}"}, refs) == {
        "path": "/x/a%20b/%7Bc%7D%3Fd%23e%25/{id}"
    }
    assert refs.secrets == ["a b/{c}?d#e%"]


def test_an_invalid_file_never_quotes_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: a\nurl: https://x.test\nretry: {'on': ['${env:CODE}']}\n")
    with pytest.raises(CatalogError) as caught:
        load_action(path, environ={"CODE": "s3cret-code"})
    assert "s3cret-code" not in str(caught.value)
    assert "retry.on: '***' is not timeout, connection" in str(caught.value)
