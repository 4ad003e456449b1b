"""A small third-party API to try actionrelay against: ``actionrelay demo-api``.

It answers the example actions in ``examples/actions/`` and logs what it got.
"""

from __future__ import annotations

import itertools

import orjson
from aiohttp import web

_ids = itertools.count(1)


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


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/sms/v1/{country}/messages", send_sms)
    app.router.add_get("/loyalty/v2/members/{member}", loyalty_member)
    app.router.add_put("/crm/contacts/{contact}", upsert_contact)
    return app
