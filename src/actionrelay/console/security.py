"""Who may read and who may write in the console.

- Bound to loopback, pages and API calls are open; bound beyond it, each needs the
  token (``ACTIONRELAY_CONSOLE_TOKEN``): ``Authorization: Bearer <token>``, or the
  session cookie that ``/login`` sets.
- Writes (test request, replay, purge) always need it; without a configured token
  the console is read-only.
- A write made with the session cookie must also carry the form's CSRF field, an
  HMAC of the session, and come from this origin when the browser says where from.
- Tokens, sessions and CSRF fields are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

COOKIE = "actionrelay_console"
OPEN_PATHS = ("/login", "/static/", "/healthz")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    def __init__(self, token: str | None, *, open_reads: bool) -> None:
        self.token = token
        self.open_reads = open_reads
        self._key = secrets.token_bytes(32)  # sessions end with the process

    def session(self) -> str:
        assert self.token is not None
        return self._mac(f"session:{self.token}")

    def csrf(self, request: web.Request) -> str:
        """The CSRF field of this request's forms ("" without a session)."""
        session = request.cookies.get(COOKIE, "")
        return self._mac(f"csrf:{session}") if session else ""

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def authenticated(self, request: web.Request) -> bool:
        if self.token is None:
            return False
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer ") and self.token_matches(bearer.removeprefix("Bearer ")):
            return True
        return hmac.compare_digest(
            request.cookies.get(COOKIE, "").encode(), self.session().encode()
        )

    async def csrf_ok(self, request: web.Request) -> bool:
        """A cookie-borne write carries this session's CSRF field and comes from here."""
        if not request.cookies.get(COOKIE):
            return True  # a bearer token is no ambient credential
        origin = request.headers.get("Origin")
        if origin not in (None, "null") and origin != f"{request.scheme}://{request.host}":
            return False
        given = str((await request.post()).get("csrf", ""))
        return hmac.compare_digest(given.encode(), self.csrf(request).encode())

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await self._checked(request, handler)
        response.headers.update(HEADERS)
        return response

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(OPEN_PATHS):
            return await handler(request)
        if request.method in WRITE_METHODS:
            if self.token is None:
                return refused(request, 403, "writes need ACTIONRELAY_CONSOLE_TOKEN to be set")
            if not self.authenticated(request):
                return refused(request, 401, "this needs the console token: log in first")
            if not await self.csrf_ok(request):
                return refused(request, 403, "cross-site request refused (CSRF check)")
        elif not self.open_reads and not self.authenticated(request):
            return refused(request, 401, "this needs the console token: log in first")
        return await handler(request)


def refused(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": {"status": status, "message": message}}, status=status)
    body = (
        "<!doctype html><title>refused</title><link rel=stylesheet href=/static/console.css>"
        f"<main><h1>{status}</h1><p class=refused>{message}</p>"
        "<p><a href=/login>Log in</a></p></main>"
    )
    return web.Response(status=status, text=body, content_type="text/html")
