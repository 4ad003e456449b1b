"""The console's aiohttp application: pages, the catalog API, static files, the guard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from actionrelay.catalog.api import CatalogApi
from actionrelay.catalog.loader import Catalog
from actionrelay.catalog.reload import CatalogWatcher
from actionrelay.console import deadletters, pages
from actionrelay.console.app import CONSOLE, HERE, Console, console_of
from actionrelay.console.security import COOKIE, Guard, is_loopback
from actionrelay.limits.endpoint import EndpointTable
from actionrelay.settings import ConsoleSettings, Settings


async def healthz(_: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


async def login_page(request: web.Request) -> web.StreamResponse:
    return console_of(request).render(request, "login.html", failed=False)


async def login(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    token = str((await request.post()).get("token", ""))
    if not console.guard.token_matches(token):
        response = console.render(request, "login.html", failed=True)
        response.set_status(401)
        return response
    response = web.Response(status=303, headers={"Location": "/"})
    secure = request.scheme == "https"
    response.set_cookie(
        COOKIE, console.guard.session(), httponly=True, samesite="Strict", secure=secure
    )
    return response


def make_app(
    settings: Settings, options: ConsoleSettings, catalog: Catalog, endpoints: EndpointTable
) -> web.Application:
    token = options.console_token.get_secret_value() if options.console_token else None
    guard = Guard(token, open_reads=is_loopback(options.console_host))
    console = Console(settings, options, catalog, endpoints, guard)
    app = web.Application(middlewares=[guard.middleware])
    app[CONSOLE] = console
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_static("/static/", HERE / "static")
    app.router.add_routes(pages.routes() + deadletters.routes())
    app.router.add_routes(CatalogApi(lambda: (console.catalog, console.endpoints)).routes())
    app.cleanup_ctx.append(watching)
    return app


async def watching(app: web.Application) -> AsyncIterator[None]:
    """Hot reload, as in the worker."""
    console = app[CONSOLE]
    interval = console.settings.reload_interval_seconds
    task = None
    if interval:
        watcher = CatalogWatcher(console.settings.actions_dir, interval, console.replace)
        task = asyncio.create_task(watcher.run(), name="console-catalog-watcher")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
