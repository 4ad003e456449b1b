"""Fixtures for tests against a real RabbitMQ and real HTTP servers on loopback.

The broker comes from ``ACTIONRELAY_TEST_AMQP_URL``, else from a testcontainers
RabbitMQ when Docker answers. Under ``CI=true`` a missing broker fails the run.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from actionrelay.broker.topology import Topology
from actionrelay.core.errors import CatalogError
from actionrelay.limits.endpoint import load_endpoints
from actionrelay.settings import Settings
from tests.integration.support import RecordingApi, WorkerHarness

AMQP_ENV = "ACTIONRELAY_TEST_AMQP_URL"


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    url = os.environ.get(AMQP_ENV)
    if url:
        yield url
        return
    if _docker_answers():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            yield f"amqp://guest:guest@{host}:{port}/"
        return
    message = f"no RabbitMQ for integration tests: set {AMQP_ENV} or make Docker reachable"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def test_id(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]
    return f"{name}.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(amqp_url: str, test_id: str, tmp_path: Path) -> Settings:
    """Settings whose every queue and exchange name is unique to this test."""
    actions_dir = tmp_path / "actions"
    actions_dir.mkdir()
    return Settings(
        amqp_url=amqp_url,
        actions_dir=actions_dir,
        request_queue=f"t.{test_id}.requests",
        results_exchange=f"t.{test_id}.results",
        results_queue=f"t.{test_id}.results",
        dead_letter_queue=f"t.{test_id}.dead",
        shutdown_grace_seconds=5,
        worker_id=f"test-{test_id}",
        prefetch=64,
        http_port=0,
        # The recording APIs listen on loopback over plain http: opt in, as a user would.
        allow_http_hosts="*",
        allow_private_networks="127.0.0.0/8,::1/128",
    )


@pytest.fixture
async def amqp(amqp_url: str, test_id: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": f"test {test_id}"}
    )
    yield connection
    await connection.close()


@pytest.fixture
async def channel(
    amqp: AbstractRobustConnection, settings: Settings
) -> AsyncIterator[AbstractChannel]:
    """A confirming channel; deletes the test's queues and exchange afterwards."""
    ch = await amqp.channel()
    yield ch
    cleanup = await amqp.channel()
    for name in (settings.request_queue, settings.results_queue, settings.dead_letter_queue):
        await cleanup.queue_delete(name)
    for name in holding_queues(settings):
        await cleanup.queue_delete(name)
    await cleanup.exchange_delete(settings.results_exchange)
    await cleanup.close()


def holding_queues(settings: Settings) -> list[str]:
    """The holding queues of the test's throttled endpoints (delay queues expire alone)."""
    try:
        table = load_endpoints(settings.actions_dir)
    except CatalogError:
        return []
    topology = Topology(settings)
    return [topology.holding_queue_name(e) for e in table.entries if e.throttling]


@pytest.fixture
async def api() -> AsyncIterator[RecordingApi]:
    server = RecordingApi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def harness(
    settings: Settings, channel: AbstractChannel, api: RecordingApi
) -> AsyncIterator[WorkerHarness]:
    h = WorkerHarness(settings, channel, api)
    yield h
    await h.close()


def action_file(directory: Path, definition: dict[str, Any]) -> Path:
    import orjson

    path = directory / f"{definition['name']}.json"
    path.write_bytes(orjson.dumps(definition))
    return path
