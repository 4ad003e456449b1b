"""Real servers for the auth and egress tests: a token endpoint, protected APIs, a PKI.

Kept apart from ``support.py``: everything here builds on ``RecordingApi``.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.support import Received, RecordingApi, Reply

FORM = "application/x-www-form-urlencoded"


# --- token endpoint ---------------------------------------------------------------


@dataclass(frozen=True)
class TokenCall:
    """One request as the token endpoint saw it; ``fields`` from the form, JSON or query."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    content_type: str
    fields: dict[str, Any]


TokenCheck = Callable[[TokenCall], str | None]  # None when acceptable, else why not


def client_credentials(
    client_id: str, client_secret: str, *, scope: str | None = None, audience: str | None = None
) -> TokenCheck:
    """What an OAuth2 server checks of a client credentials grant (RFC 6749 §4.4)."""
    expected = {"grant_type": "client_credentials", "client_id": client_id}
    if scope is not None:
        expected["scope"] = scope
    if audience is not None:
        expected["audience"] = audience

    def check(call: TokenCall) -> str | None:
        if call.method != "POST" or call.content_type != FORM:
            return f"expected a form POST, got {call.method} {call.content_type}"
        wrong = sorted(k for k, v in expected.items() if call.fields.get(k) != v)
        if wrong:
            return f"wrong or missing {', '.join(wrong)}"
        if call.fields.get("client_secret") != client_secret:
            return "invalid client"
        return None

    return check


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def jwt_bearer_grant(
    public_key: PublicKeyTypes,
    *,
    issuer: str,
    audience: str,
    scope: str,
    algorithm: str = "RS256",
    max_lifetime: int = 3600,
) -> TokenCheck:
    """What Google's token endpoint checks of a JWT bearer grant (RFC 7523 §2.1, §3)."""

    def check(call: TokenCall) -> str | None:
        if call.method != "POST" or call.content_type != FORM:
            return f"expected a form POST, got {call.method} {call.content_type}"
        if call.fields.get("grant_type") != JWT_BEARER:
            return f"unsupported grant_type {call.fields.get('grant_type')!r}"
        try:
            claims = jwt.decode(
                call.fields.get("assertion", ""),
                public_key,  # type: ignore[arg-type]
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return f"invalid_grant: {type(exc).__name__}: {exc}"
        if claims.get("scope") != scope:
            return f"invalid_scope: {claims.get('scope')!r}"
        if abs(claims["iat"] - time.time()) > 60:
            return "invalid_grant: iat is not now"
        if not 0 < claims["exp"] - claims["iat"] <= max_lifetime:
            return f"invalid_grant: the assertion lives {claims['exp'] - claims['iat']} s"
        return None

    return check


class TokenServer:
    """A real token endpoint on 127.0.0.1 that issues ``tok-1``, ``tok-2``, … .

    ``check`` decides whether a request gets a token (400 naming the problem
    otherwise); ``answer`` shapes the body for a token; ``fail_status`` makes
    every request fail.
    """

    def __init__(self, check: TokenCheck = lambda _: None) -> None:
        self.check = check
        self.expires_in: float | None = 3600
        self.answer: Callable[[str], Any] = self._oauth2_answer
        self.fail_status: int | None = None
        self.calls: list[TokenCall] = []
        self.issued: list[str] = []
        self.refused: list[str] = []
        self._serial = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _oauth2_answer(self, token: str) -> Any:
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return body

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        call = await _token_call(request)
        self.calls.append(call)
        if self.fail_status is not None:
            return _json({"error": "server_error"}, self.fail_status)
        problem = self.check(call)
        if problem is not None:
            self.refused.append(problem)
            return _json({"error": "invalid_request", "error_description": problem}, 400)
        token = f"tok-{next(self._serial)}"
        self.issued.append(token)
        answer = self.answer(token)
        if isinstance(answer, str):
            return web.Response(text=answer, content_type="text/plain")
        return _json(answer, 200)


async def _token_call(request: web.Request) -> TokenCall:
    content_type = request.content_type if request.body_exists else ""
    fields: dict[str, Any] = dict(request.query)
    if content_type == FORM:
        fields = {k: str(v) for k, v in (await request.post()).items()}
    elif content_type == "application/json":
        fields = orjson.loads(await request.read())
    return TokenCall(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=dict(request.headers),
        content_type=content_type,
        fields=fields,
    )


def _json(data: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


# --- protected APIs ---------------------------------------------------------------


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class ProtectedApi(RecordingApi):
    """A RecordingApi that answers 401 unless ``authorized(request)`` holds."""

    def __init__(self) -> None:
        super().__init__()
        self.authorized: Callable[[Received], bool] = lambda _: True

    def reply_for(self, received: Received) -> Reply:
        if not self.authorized(received):
            return Reply(401, {"error": "unauthorized"}, headers={"WWW-Authenticate": "Bearer"})
        return super().reply_for(received)

    def credentials(self) -> list[str | None]:
        """The Authorization header of every request received, in order."""
        return [r.headers.get("Authorization") for r in self.received]


class EchoApi(RecordingApi):
    """An API careless with credentials: it repeats the request's headers and query.

    Paths ending in ``/fail`` answer 400, the others 200.
    """

    def reply_for(self, received: Received) -> Reply:
        headers = {str(k): v for k, v in received.headers.items()}  # keys are istr
        echo = {"headers": headers, "query": dict(received.query)}
        if received.path.endswith("/fail"):
            return Reply(400, {"error": "rejected", "you_sent": echo})
        return Reply(200, {"ok": True, "you_sent": echo})


class TlsApi(RecordingApi):
    """A RecordingApi served over https with the given server context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._context).start()
        self.port = self._runner.addresses[0][1]


# --- certificates -----------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (PEM)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, *, require_client_cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.load_cert_chain(self.server_cert, self.server_key)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
        return context


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("actionrelay test CA")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pem(directory / "ca.pem", ca)
    server_cert, server_key = _leaf(
        directory / "server", ca, ca_key, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_cert, client_key = _leaf(
        directory / "client", ca, ca_key, "journey-worker", ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return Pki(directory / "ca.pem", server_cert, server_key, client_cert, client_key)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf(
    stem: Path,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(_name(common_name), ca.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    _write_pem(cert_path, cert)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _write_pem(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
