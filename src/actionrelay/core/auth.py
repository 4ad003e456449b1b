"""Authentication modes of an action (``auth:``): what they are, and the token requests
they make and the answers they read. Pure: ``http/tokens.py`` fetches and caches tokens.
The two modes that sign a JWT are specified in ``core/jwt_auth.py``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from yarl import URL

from actionrelay.core.jwt_auth import JWT_BEARER_GRANT, OAuth2JwtBearer, SelfSignedJwt


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NoAuth(_Auth):
    type: Literal["none"] = "none"


class BasicAuth(_Auth):
    type: Literal["basic"]
    username: str = Field(pattern=r"^[^:]*$", description="No ':' (RFC 7617).")
    password: SecretStr


class ApiKeyAuth(_Auth):
    type: Literal["api_key"]
    name: str = Field(description="Header or query parameter name.")
    value: SecretStr
    location: Literal["header", "query"] = Field(default="header", alias="in")


class BearerAuth(_Auth):
    type: Literal["bearer"]
    token: SecretStr


class _TokenAuth(_Auth):
    token_url: str
    refresh_margin_seconds: float = Field(default=60.0, ge=0)
    default_expires_in_seconds: float = Field(default=3600.0, gt=0)


class OAuth2ClientCredentials(_TokenAuth):
    type: Literal["oauth2_client_credentials"]
    client_id: str
    client_secret: SecretStr
    scopes: list[str] = Field(default_factory=list)
    audience: str | None = None


class CustomAuth(_TokenAuth):
    """The leader's custom authorization: any token endpoint, token read by JSON path."""

    type: Literal["custom"]
    method: Literal["GET", "POST"] = "POST"
    # Not SecretStr: a constant here is no credential; values given by reference are
    # secrets like every reference (catalog/loader.py).
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] = Field(default_factory=dict)
    body_format: Literal["json", "form"] = "json"
    token_path: str = Field(
        default="json://access_token", description="json://a.b or 'response' (whole body)."
    )
    expires_in_path: str | None = Field(default=None, description="json://expires_in")
    cache_seconds: float | None = Field(default=None, gt=0, description="Fixed cache time.")
    send_as: Literal["bearer", "header", "query"] = "bearer"
    send_name: str | None = Field(default=None, description="Header or query name.")

    @model_validator(mode="after")
    def _check(self) -> CustomAuth:
        if self.send_as != "bearer" and not self.send_name:
            raise ValueError(f"send_as {self.send_as} needs send_name")
        for path in (self.token_path, self.expires_in_path):
            if path is not None and path != "response" and not path.startswith("json://"):
                raise ValueError(f"{path!r} must be 'response' or json://path")
        return self


AuthSpec = Annotated[
    NoAuth
    | BasicAuth
    | ApiKeyAuth
    | BearerAuth
    | OAuth2ClientCredentials
    | CustomAuth
    | OAuth2JwtBearer
    | SelfSignedJwt,
    Field(discriminator="type"),
]
# The modes whose credential is a token that lives a while, cached by http/tokens.py.
TokenAuth = OAuth2ClientCredentials | CustomAuth | OAuth2JwtBearer | SelfSignedJwt
TOKEN_AUTHS = (OAuth2ClientCredentials, CustomAuth, OAuth2JwtBearer, SelfSignedJwt)


def basic_credentials(auth: BasicAuth) -> str:
    """The base64 part of ``Authorization: Basic …`` (RFC 7617, UTF-8)."""
    pair = f"{auth.username}:{auth.password.get_secret_value()}".encode()
    return base64.b64encode(pair).decode("ascii")


def secret_values(auth: AuthSpec) -> list[str]:
    """Every credential field of an auth spec, for the Redactor.

    Only credentials: constants of a custom token request (``grant: token``) are
    not, or ordinary words would be masked everywhere; a credential there is
    given by reference, and every reference is a secret.
    """
    values = [v.get_secret_value() for v in auth.__dict__.values() if isinstance(v, SecretStr)]
    if isinstance(auth, BasicAuth):
        values.append(basic_credentials(auth))  # an echoed header decodes to the password
    if isinstance(auth, OAuth2JwtBearer | SelfSignedJwt):
        values = auth.secret_values()
    return values


# --- tokens ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenRequest:
    method: str
    url: URL
    headers: dict[str, str]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    status: int
    body: bytes


def jwt_grant_request(auth: OAuth2JwtBearer, assertion: str) -> TokenRequest:
    """RFC 7523 §2.1: the signed JWT as ``assertion`` of a form POST."""
    form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
    if auth.scopes and auth.scope_in == "form":
        form["scope"] = " ".join(auth.scopes)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return TokenRequest("POST", URL(auth.token_url), headers, urlencode(form).encode())


def token_request(auth: OAuth2ClientCredentials | CustomAuth) -> TokenRequest:
    if isinstance(auth, OAuth2ClientCredentials):
        form: dict[str, str] = {
            "grant_type": "client_credentials",
            "client_id": auth.client_id,
            "client_secret": auth.client_secret.get_secret_value(),
        }
        if auth.scopes:
            form["scope"] = " ".join(auth.scopes)
        if auth.audience:
            form["audience"] = auth.audience
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return TokenRequest("POST", URL(auth.token_url), headers, body)
    headers = dict(auth.headers)
    url = URL(auth.token_url)
    fields = {k: str(v) for k, v in auth.body.items()}
    if auth.method == "GET":
        return TokenRequest("GET", url.update_query(fields) if fields else url, headers, None)
    if auth.body_format == "form":
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return TokenRequest("POST", url, headers, urlencode(fields).encode())
    headers.setdefault("Content-Type", "application/json")
    return TokenRequest("POST", url, headers, orjson.dumps(auth.body))


def _json_path(data: Any, path: str) -> Any:
    for part in path.removeprefix("json://").split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def read_token(
    auth: OAuth2ClientCredentials | CustomAuth | OAuth2JwtBearer, body: bytes
) -> tuple[str, float]:
    """(token, lifetime in seconds) from a token endpoint's answer."""
    expires_path: str | None = "json://expires_in"
    token_path = "json://access_token"  # noqa: S105 - a JSON path, not a password
    if isinstance(auth, CustomAuth):
        token_path, expires_path = auth.token_path, auth.expires_in_path
    if token_path == "response":  # noqa: S105
        token: Any = body.decode("utf-8", errors="replace").strip()
        data: Any = None
    else:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError("token endpoint answer is not JSON") from exc
        token = _json_path(data, token_path)
    if not isinstance(token, str) or not token:
        raise ValueError(f"no token at {token_path} in the token endpoint's answer")
    lifetime = auth.default_expires_in_seconds
    if isinstance(auth, CustomAuth) and auth.cache_seconds is not None:
        lifetime = auth.cache_seconds
    elif expires_path and data is not None:
        expires_in = _json_path(data, expires_path)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            lifetime = float(expires_in)
    return token, lifetime
