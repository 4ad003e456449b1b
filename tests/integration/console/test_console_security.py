"""Who gets in: beyond loopback every page and API call needs the token; writes always do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from actionrelay.catalog.loader import load_catalog
from actionrelay.console.server import make_app
from actionrelay.limits.endpoint import load_endpoints
from actionrelay.settings import ConsoleSettings, Settings
from tests.integration.console.test_console_browser import free_port

TOKEN = "a-long-console-token"


@asynccontextmanager
async def served(settings: Settings, options: ConsoleSettings) -> AsyncIterator[str]:
    catalog, endpoints = load_catalog(settings.actions_dir), load_endpoints(settings.actions_dir)
    runner = web.AppRunner(make_app(settings, options, catalog, endpoints), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def status_of(method: Callable[..., Any], url: str, **kw: object) -> int:
    async with method(url, **kw) as response:
        status: int = response.status
        return status


async def test_beyond_loopback_everything_needs_the_token(settings: Settings) -> None:
    options = ConsoleSettings(console_host="0.0.0.0", console_token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with served(settings, options) as url, aiohttp.ClientSession() as http:
        for path in ("/", "/dead-letters", "/api/v1/actions", "/api/v1/openapi.json"):
            assert await status_of(http.get, url + path) == 401, path
            assert (
                await status_of(http.get, url + path, headers={"Authorization": "Bearer x"}) == 401
            )
        assert await status_of(http.get, url + "/api/v1/actions", headers=bearer) == 200
        assert await status_of(http.get, url + "/static/console.css") == 200
        assert await status_of(http.get, url + "/login") == 200
        async with http.get(url + "/api/v1/actions") as response:
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "script-src 'none'" in response.headers["Content-Security-Policy"]


async def test_without_a_token_the_console_is_read_only(settings: Settings) -> None:
    async with served(settings, ConsoleSettings()) as url, aiohttp.ClientSession() as http:
        assert await status_of(http.get, url + "/api/v1/actions") == 200
        refused = await status_of(http.post, url + "/dead-letters/purge", data={"confirm": "yes"})
        assert refused == 403
        assert await status_of(http.post, url + "/login", data={"token": ""}) == 401
