"""Liveness and readiness over HTTP, for orchestrators and load balancers.

``/healthz``: the process serves requests. ``/readyz``: connected to RabbitMQ,
topology declared and consuming; 503 with the reason otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

Probe = Callable[[], str | None]  # None when ready, else why not


def make_app(readiness: Probe) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        reason = readiness()
        body = orjson.dumps({"ready": reason is None, "reason": reason})
        status = 200 if reason is None else 503
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


class HealthServer:
    """Serves the probes on ``host:port`` (port 0 disables it)."""

    def __init__(self, readiness: Probe, *, host: str, port: int) -> None:
        self._app = make_app(readiness)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if not self._port:
            return
        self._runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
