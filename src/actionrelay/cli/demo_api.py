"""A small third-party API to try actionrelay against: ``actionrelay demo-api``.

It answers the example actions in ``examples/actions/`` and logs what it got.
The ``/partner`` routes want the credentials of one auth mode each; their demo
values are the defaults of the example files.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Callable

import orjson
from aiohttp import web

_ids = itertools.count(1)
DEMO_BASIC = "journeys:demo-password"
DEMO_API_KEY = "demo-api-key"
DEMO_BEARER = "demo-bearer-token"
DEMO_CLIENT = {"client_id": "journeys", "client_secret": "demo-client-secret"}
DEMO_CUSTOM_KEY = "demo-custom-key"
ISSUED = web.AppKey("issued", set[str])


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def send_sms(request: web.Request) -> web.Response:
    if not request.headers.get("X-Tenant"):
        return _json({"error": "X-Tenant header is required"}, status=400)
    body = await request.json(loads=orjson.loads)
    if not str(body.get("to", "")).startswith("+"):
        return _json({"error": "'to' must be an E.164 number"}, status=422)
    return _json({"messageId": f"m-{next(_ids)}", "status": "queued", "to": body["to"]}, 201)


async def loyalty_member(request: web.Request) -> web.Response:
    member = request.match_info["member"]
    if member.startswith("unknown"):
        return _json({"error": f"no member {member}"}, status=404)
    return _json({"member": member, "tier": "gold", "points": 1200, "since": "2021-03-01"})


async def upsert_contact(request: web.Request) -> web.Response:
    body = await request.json(loads=orjson.loads)
    return _json({"id": request.match_info["contact"], "updated": True, "fields": sorted(body)})


async def oauth_token(request: web.Request) -> web.Response:
    """OAuth2 client credentials (RFC 6749 §4.4), form-encoded."""
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return _json({"error": "unsupported_grant_type"}, status=400)
    if any(form.get(k) != v for k, v in DEMO_CLIENT.items()):
        return _json({"error": "invalid_client"}, status=401)
    token = _issue(request, "oauth")
    return _json({"access_token": token, "token_type": "Bearer", "expires_in": 3600})


async def session_token(request: web.Request) -> web.Response:
    """A vendor's own token endpoint: JSON in, the token at session.token."""
    body = await request.json(loads=orjson.loads)
    if body.get("apiKey") != DEMO_CUSTOM_KEY:
        return _json({"error": "bad apiKey"}, status=403)
    return _json({"session": {"token": _issue(request, "session"), "ttl": 900}})


def _issue(request: web.Request, kind: str) -> str:
    token = f"demo-{kind}-{secrets.token_hex(8)}"
    request.app[ISSUED].add(token)
    return token


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


_BASIC_HEADER = "Basic " + base64.b64encode(DEMO_BASIC.encode()).decode()
CREDENTIALS_OK: dict[str, Callable[[web.Request], bool]] = {
    "basic": lambda r: r.headers.get("Authorization") == _BASIC_HEADER,
    "api-key-header": lambda r: r.headers.get("X-Api-Key") == DEMO_API_KEY,
    "api-key-query": lambda r: r.query.get("apikey") == DEMO_API_KEY,
    "bearer": lambda r: _bearer(r) == DEMO_BEARER,
    "oauth2": lambda r: _bearer(r) in r.app[ISSUED],
    "custom": lambda r: r.headers.get("X-Session-Token") in r.app[ISSUED],
}


async def partner(request: web.Request) -> web.Response:
    """``/partner/{mode}/{resource}``: 401 unless the mode's credentials are there."""
    mode = request.match_info["mode"]
    check = CREDENTIALS_OK.get(mode)
    if check is None:
        return _json({"error": f"no auth mode {mode}; one of {sorted(CREDENTIALS_OK)}"}, 404)
    if not check(request):
        return _json({"error": f"{mode} credentials missing or wrong"}, status=401)
    body = await request.json(loads=orjson.loads) if request.body_exists else {}
    return _json({"id": f"r-{next(_ids)}", "accepted": True, "fields": sorted(body)}, 201)


def make_app() -> web.Application:
    app = web.Application()
    app[ISSUED] = set()
    app.router.add_post("/sms/v1/{country}/messages", send_sms)
    app.router.add_get("/loyalty/v2/members/{member}", loyalty_member)
    app.router.add_put("/crm/contacts/{contact}", upsert_contact)
    app.router.add_post("/oauth/token", oauth_token)
    app.router.add_post("/auth/session", session_token)
    app.router.add_route("*", "/partner/{mode}/{resource}", partner)
    return app
