"""Wiring one worker process together; ``actionrelay run`` calls ``serve``."""

from __future__ import annotations

import asyncio
import gc
import signal

import structlog

from actionrelay.broker.broker import Broker, BrokerUnavailable
from actionrelay.catalog.api import CatalogApi
from actionrelay.catalog.loader import Catalog
from actionrelay.catalog.reload import CatalogWatcher
from actionrelay.core.secret import Redactor
from actionrelay.http.client import HttpClient
from actionrelay.http.egress import EgressPolicy, describe
from actionrelay.limits.endpoint import Breaker, load_endpoints
from actionrelay.limits.gate import EndpointGate
from actionrelay.limits.limiter import RateLimits
from actionrelay.observability.health import HealthServer
from actionrelay.observability.metrics import Metrics
from actionrelay.observability.tracing import tracing_for
from actionrelay.settings import Settings
from actionrelay.worker import Worker

log = structlog.get_logger("actionrelay.service")
GC_YOUNG_THRESHOLD = 50_000


async def serve(settings: Settings, catalog: Catalog, redactor: Redactor) -> None:
    """Run one worker until SIGTERM/SIGINT, then stop gracefully."""
    broker = Broker(settings, connection_name=f"actionrelay worker {settings.worker_id}")
    worker = await build_worker(settings, catalog, redactor, broker)
    http = worker.http
    # Everything built so far lives as long as the process: keep it out of the
    # garbage collector's scans, which otherwise grow with every import.
    gc.collect()
    gc.freeze()
    # Each in-flight event allocates many short-lived objects; with the default
    # threshold (700) the young generation is collected hundreds of times a second.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    worker.metrics.consuming.set_function(lambda: float(broker.not_ready_reason() is None))
    catalog_api = CatalogApi(lambda: (worker.catalog, worker.gate.table))
    health = HealthServer(
        broker.not_ready_reason,
        host=settings.http_host,
        port=settings.http_port,
        metrics=worker.metrics,
        routes=catalog_api.routes(),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    await health.start()
    watching = start_watching(settings, worker)
    try:
        async with http:
            await worker.run()
    finally:
        if watching is not None:
            watching.cancel()
        worker.tracing.shutdown()
        await broker.close()
        await health.stop()


def start_watching(settings: Settings, worker: Worker) -> asyncio.Task[None] | None:
    """Hot reload of the actions directory, unless turned off."""
    if not settings.reload_interval_seconds:
        return None
    watcher = CatalogWatcher(
        settings.actions_dir, settings.reload_interval_seconds, worker.replace_catalog
    )
    return asyncio.create_task(watcher.run(), name="catalog-watcher")


async def build_worker(
    settings: Settings, catalog: Catalog, redactor: Redactor, broker: Broker
) -> Worker:
    """Everything a worker needs, checked before it consumes; connects the broker."""
    egress = EgressPolicy.from_settings(settings.allow_http_hosts, settings.allow_private_networks)
    log.info("egress.policy", **describe(egress))
    for action in catalog.values():
        if not action.tls.verify:
            log.warning("tls.verification_off", action=action.name, url=action.url)
    metrics = Metrics()
    gate = await build_gate(settings, metrics)
    await connect_with_backoff(broker)
    http = HttpClient(
        egress=egress,
        redactor=redactor,
        max_connections=settings.max_connections,
        on_token_fetch=lambda outcome: metrics.token_fetches.labels(outcome).inc(),
    )
    tracing = tracing_for(settings.otlp_endpoint)
    return Worker(
        settings,
        catalog,
        broker,
        http,
        gate=gate,
        redactor=redactor,
        metrics=metrics,
        tracing=tracing,
    )


async def build_gate(settings: Settings, metrics: Metrics) -> EndpointGate:
    """Endpoint limits from endpoints.yaml, counted in Redis when it is configured."""
    table = load_endpoints(settings.actions_dir)
    limits = RateLimits(settings.redis_url)
    if settings.redis_url:
        await limits.check()
    log.info(
        "endpoint.limits",
        endpoints=len(table.entries),
        scope="all replicas (Redis)" if settings.redis_url else "this worker only (no Redis)",
    )
    breaker = Breaker(
        failures=settings.breaker_failures, cool_down_seconds=settings.breaker_cool_down_seconds
    )
    return EndpointGate(table, limits, breaker, metrics)


async def connect_with_backoff(broker: Broker, attempts: int = 8) -> None:
    """Startup waits for a broker that is still coming up; only BrokerUnavailable is retried."""
    for attempt in range(1, attempts + 1):
        try:
            await broker.connect()
        except BrokerUnavailable as exc:
            if attempt == attempts:
                raise
            delay = min(0.5 * 2**attempt, 10.0)
            log.warning("broker.unavailable", error=str(exc), retry_in_seconds=delay)
            await asyncio.sleep(delay)
        else:
            return
