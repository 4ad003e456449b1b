"""The catalog API: which actions exist and what each takes, for the journey engine's palette.

``GET /api/v1/actions`` lists every action in full, ``GET /api/v1/actions/{name}``
gives one, ``GET /api/v1/openapi.json`` describes both (``catalog/openapi.py``).
Answers carry a strong ETag of their body; ``If-None-Match`` gets a 304, so an
engine can poll cheaply. The catalog is read at each request from ``source``, so
a hot reload shows at once. No credential is ever in an answer: the auth block is
reduced to its type, the URL loses any user info and every secret value the
catalog resolved is masked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from actionrelay.catalog.loader import Catalog
from actionrelay.catalog.openapi import document as openapi_document
from actionrelay.catalog.schema import params_schema
from actionrelay.core.action import ActionDefinition
from actionrelay.core.secret import Redactor
from actionrelay.limits.endpoint import EndpointConfig, EndpointTable

PREFIX = "/api/v1"
CatalogSource = Callable[[], tuple[Catalog, EndpointTable]]


def endpoint_url(action: ActionDefinition) -> URL:
    """The URL the action calls, path placeholders left as ``{name}``, no user info."""
    url = URL(action.url).with_user(None)
    if action.path:
        url = URL(str(url).rstrip("/") + action.path, encoded=True)
    return url


def action_document(
    action: ActionDefinition, endpoints: EndpointTable, redactor: Redactor
) -> dict[str, Any]:
    """One action as the catalog API shows it."""
    url = endpoint_url(action)
    limits = endpoints.find(action.method, url)
    return {
        "name": action.name,
        "version": action.version,
        "description": action.description,
        "method": action.method,
        "host": url.host,
        "url": redactor.mask(str(url)),
        "auth": {"type": action.auth.type},
        "params": params_schema(action),
        "response_fields": action.response.fields,
        "retry": action.retry.model_dump(),
        "deadline": {
            "timeout_seconds": action.timeout_seconds,
            "max_age_seconds": action.max_age_seconds,
        },
        "limits": None if limits is None else limits_document(limits),
    }


def limits_document(endpoint: EndpointConfig) -> dict[str, Any]:
    return endpoint.model_dump(mode="json") | {"key": endpoint.key}


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def not_modified(request: web.Request, etag: str) -> bool:
    given = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in given.split(",")}
    return "*" in tags or etag in tags


class CatalogApi:
    """The answers of the catalog API, rendered once per catalog version."""

    def __init__(self, source: CatalogSource) -> None:
        self._source = source
        self._rendered: tuple[int, int, dict[str, bytes], bytes] | None = None

    def bodies(self) -> tuple[dict[str, bytes], bytes]:
        """(each action's JSON by name, the list's JSON) for the catalog now in force."""
        catalog, endpoints = self._source()
        key = (id(catalog), id(endpoints))
        if self._rendered is None or self._rendered[:2] != key:
            redactor = Redactor(catalog.secrets)
            documents = [
                action_document(catalog[name], endpoints, redactor) for name in sorted(catalog)
            ]
            each = {doc["name"]: orjson.dumps(doc) for doc in documents}
            listing = orjson.dumps({"count": len(documents), "actions": documents})
            self._rendered = (*key, each, listing)
        return self._rendered[2], self._rendered[3]

    async def list_actions(self, request: web.Request) -> web.Response:
        return answer(request, self.bodies()[1])

    async def get_action(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self.bodies()[0].get(name)
        if body is None:
            return error(404, f"no action {name!r}")
        return answer(request, body)

    async def openapi(self, request: web.Request) -> web.Response:
        return answer(request, orjson.dumps(openapi_document()))

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/actions", self.list_actions),
            web.get(f"{PREFIX}/actions/{{name}}", self.get_action),
            web.get(f"{PREFIX}/openapi.json", self.openapi),
        ]


def answer(request: web.Request, body: bytes) -> web.Response:
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if not_modified(request, etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type="application/json")


def error(status: int, message: str) -> web.Response:
    body = orjson.dumps({"error": {"status": status, "message": message}})
    return web.Response(status=status, body=body, content_type="application/json")
