"""Liveness, readiness and metrics over HTTP, for orchestrators and Prometheus.

``/healthz``: the process serves requests. ``/readyz``: connected to RabbitMQ,
topology declared and consuming; 503 with the reason otherwise. ``/metrics``:
Prometheus text format. The layers above add their own routes on the same port
(the catalog API, ``catalog/api.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from actionrelay.observability.metrics import Metrics

Probe = Callable[[], str | None]  # None when ready, else why not


def make_app(
    readiness: Probe, metrics: Metrics | None = None, routes: Iterable[web.RouteDef] = ()
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        reason = readiness()
        body = orjson.dumps({"ready": reason is None, "reason": reason})
        status = 200 if reason is None else 503
        return web.Response(body=body, status=status, content_type="application/json")

    async def scrape(_: web.Request) -> web.Response:
        assert metrics is not None
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        app.router.add_get("/metrics", scrape)
    app.router.add_routes(list(routes))
    return app


class HealthServer:
    """Serves the probes on ``host:port`` (port 0 disables it)."""

    def __init__(
        self,
        readiness: Probe,
        *,
        host: str,
        port: int,
        metrics: Metrics | None = None,
        routes: Iterable[web.RouteDef] = (),
    ) -> None:
        self._app = make_app(readiness, metrics, routes)
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
