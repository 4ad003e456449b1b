"""The two auth modes that sign a JWT: ``oauth2_jwt_bearer`` and ``self_signed_jwt``.

Pure: the specs, the key check done when an action file loads, and the claims;
``http/tokens.py`` signs (PyJWT) and exchanges. Error messages never quote a key.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1
JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
# Set by the mode or its own fields, never by ``claims``.
REGISTERED_CLAIMS = {
    "iss": "issuer",
    "sub": "subject",
    "aud": "audience",
    "scope": "scopes",
    "iat": "lifetime_seconds",
    "exp": "lifetime_seconds",
    "nbf": "lifetime_seconds",
    "jti": "(set for you)",
}
SERVICE_ACCOUNT_FIELDS = ("private_key", "client_email")


def key_algorithm(pem: str, algorithm: str | None) -> str:
    """The algorithm to sign with: ``algorithm`` if the key fits it, else the key's own."""
    # Imported here: cryptography weighs several MB, and only JWT actions need it.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            "private_key: not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)"
        ) from None
    fits: tuple[str, ...]
    if isinstance(key, rsa.RSAPrivateKey):
        kind, fits = "an RSA", RSA_ALGORITHMS
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in EC_ALGORITHMS:
        kind, fits = f"a {key.curve.name} EC", (EC_ALGORITHMS[key.curve.name],)
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        kind, fits = "an Ed25519", ("EdDSA",)
    else:
        raise ValueError("private_key: RSA, EC (P-256, P-384, P-521) or Ed25519 keys only")
    if algorithm is None:
        return fits[0]
    if algorithm not in fits:
        raise ValueError(f"algorithm {algorithm} does not fit {kind} key; use {' or '.join(fits)}")
    return algorithm


def service_account_defaults(text: str) -> dict[str, Any]:
    """What a Google service-account key file gives: key, issuer, key id, token URL."""
    try:
        account = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("service_account: not a JSON service-account key file") from None
    if not isinstance(account, dict):
        raise ValueError("service_account: not a JSON service-account key file")
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not isinstance(account.get(name), str)]
    if missing:
        raise ValueError(f"service_account: the key file has no {' or '.join(missing)}")
    found = {
        "private_key": account["private_key"],
        "issuer": account["client_email"],
        "key_id": account.get("private_key_id"),
        "token_url": account.get("token_uri"),
    }
    return {name: value for name, value in found.items() if isinstance(value, str)}


class JwtAuth(BaseModel):
    """The key and the claims of a JWT; ``service_account`` fills in the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    service_account: SecretStr | None = Field(
        default=None, description="A Google service-account key file (JSON), by reference."
    )
    private_key: SecretStr | None = Field(default=None, description="PEM, by reference.")
    algorithm: JwtAlgorithm | None = Field(default=None, description="Default: from the key.")
    key_id: str | None = Field(default=None, description="The kid header.")
    issuer: str | None = None
    subject: str | None = None
    audience: str | None = None
    scopes: list[str] = Field(default_factory=list)
    claims: dict[str, Any] = Field(default_factory=dict)
    lifetime_seconds: int = Field(default=300, ge=1, le=86400)
    refresh_margin_seconds: float = Field(default=60.0, ge=0)

    _algorithm: str = PrivateAttr(default="RS256")

    @model_validator(mode="before")
    @classmethod
    def _from_service_account(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("service_account") is None:
            return data
        if data.get("private_key") is not None:
            raise ValueError("give service_account or private_key, not both")
        raw = data["service_account"]
        text = raw.get_secret_value() if isinstance(raw, SecretStr) else str(raw)
        defaults = service_account_defaults(text)
        given = {k: v for k, v in data.items() if v is not None}
        return {**{k: v for k, v in defaults.items() if k in cls.model_fields}, **given}

    @model_validator(mode="after")
    def _check_key_and_claims(self) -> JwtAuth:
        if self.private_key is None:
            raise ValueError("needs service_account or private_key")
        self._algorithm = key_algorithm(self.private_key.get_secret_value(), self.algorithm)
        for name in self.claims:
            if name in REGISTERED_CLAIMS:
                raise ValueError(f"claims: {name} is set by {REGISTERED_CLAIMS[name]}, not claims")
        return self

    @property
    def signing_algorithm(self) -> str:
        return self._algorithm

    def key_pem(self) -> str:
        assert self.private_key is not None  # checked at load
        return self.private_key.get_secret_value()

    def secret_values(self) -> list[str]:
        """The key file and the key it holds."""
        account = [self.service_account.get_secret_value()] if self.service_account else []
        return [*account, self.key_pem()]


class OAuth2JwtBearer(JwtAuth):
    """RFC 7523 §2.1: a signed JWT exchanged at a token endpoint for an access token."""

    type: Literal["oauth2_jwt_bearer"]
    token_url: str = Field(default="", description="Default: the service account's token_uri.")
    scope_in: Literal["claim", "form"] = Field(
        default="claim", description="Where scopes go: the JWT (Google) or the token request."
    )
    default_expires_in_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> OAuth2JwtBearer:
        if not self.token_url:
            raise ValueError("needs token_url (or a service_account whose file has token_uri)")
        if not self.issuer:
            raise ValueError("needs issuer (or a service_account: its client_email)")
        return self


class SelfSignedJwt(JwtAuth):
    """A JWT signed here and sent as the bearer token itself (Vonage applications)."""

    type: Literal["self_signed_jwt"]
    lifetime_seconds: int = Field(default=900, ge=1, le=86400)


def jwt_claims(
    auth: OAuth2JwtBearer | SelfSignedJwt, now: int, jti: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """(claims, extra headers) of the JWT to sign at ``now`` (Unix seconds)."""
    audience = auth.audience
    scope_claim = True
    if isinstance(auth, OAuth2JwtBearer):
        audience = audience or auth.token_url
        scope_claim = auth.scope_in == "claim"
    claims = dict(auth.claims)
    for name, value in (("iss", auth.issuer), ("sub", auth.subject), ("aud", audience)):
        if value:
            claims[name] = value
    if auth.scopes and scope_claim:
        claims["scope"] = " ".join(auth.scopes)
    claims["iat"] = now
    claims["exp"] = now + auth.lifetime_seconds
    if isinstance(auth, SelfSignedJwt):
        claims["jti"] = jti  # replay protection: Vonage requires one per token
    return claims, ({"kid": auth.key_id} if auth.key_id else {})
