"""Broker faults under load lose no step event: restarts, kills, closed connections,
alarms, and the loss of a node in a cluster.

Every test runs against RabbitMQ nodes of its own (tests/integration/nodes.py),
started from the installed rabbitmq-server; the shared broker is never touched.
Each publishes thousands of events to an endpoint that answers 503 to 30 % of
calls, with a 0.3 s retry wait, so that at the moment of the fault events are
in flight, in the delay ladder and waiting in the request queue. The scenarios
are in tests/integration/faults.py; benchmarks/faults.py runs them with
10,000 events each.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest

from actionrelay.settings import Settings
from tests.integration import faults
from tests.integration.faults import PREFETCH, FlakyApi, Tally
from tests.integration.nodes import RabbitNode, private_nodes, why_nodes_cannot_start
from tests.integration.support import WorkerHarness

# A fault test takes up to a minute, and its module's nodes start and stop in it.
pytestmark = pytest.mark.timeout(240)
EVENTS = 3000
CLUSTER_EVENTS = 6000


def _nodes_or_skip() -> None:
    reason = why_nodes_cannot_start()
    if reason is None:
        return
    message = f"cannot start private RabbitMQ nodes: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> Iterator[RabbitNode]:
    """One node of the module's own, restarted and killed at will."""
    _nodes_or_skip()
    with private_nodes("f", 1, cluster=False) as [node]:
        yield node


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RabbitNode]]:
    """Three clustered nodes of the module's own."""
    _nodes_or_skip()
    with private_nodes("c", 3, cluster=True) as nodes:
        yield nodes


@pytest.fixture
async def flaky_api() -> AsyncIterator[FlakyApi]:
    api = FlakyApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def node_harness(
    settings: Settings, node: RabbitNode, flaky_api: FlakyApi, test_id: str
) -> AsyncIterator[WorkerHarness]:
    """A harness whose workers, queues and own connection are on the private node."""
    connection = await aio_pika.connect_robust(
        node.url, client_properties={"connection_name": f"test {test_id}"}, reconnect_interval=0.5
    )
    channel = await connection.channel()
    harness = WorkerHarness(settings.model_copy(update={"amqp_url": node.url}), channel, flaky_api)
    yield harness
    await harness.close()
    await connection.close()


def assert_nothing_lost(tally: Tally, in_flight: int = PREFETCH) -> None:
    print(tally.line())  # noqa: T201 - the figures docs/reliability.md reports
    assert tally.lost == [], tally.line()
    assert tally.dead_letters == 0, tally.line()
    assert set(tally.statuses) == {"success"}, tally.line()
    # Only the events in flight when a connection went are redelivered and answered again.
    assert tally.duplicates <= in_flight, tally.line()


async def test_stop_app_with_events_in_delay_queues_loses_none(
    node_harness: WorkerHarness, node: RabbitNode, test_id: str
) -> None:
    """Issue 12's reproduction. With classic delay queues it lost 134 of 3,000."""
    assert_nothing_lost(await faults.stop_app(node_harness, node, test_id, EVENTS))


async def test_broker_killed_and_started_again_loses_none(
    node_harness: WorkerHarness, node: RabbitNode, test_id: str
) -> None:
    assert_nothing_lost(await faults.kill(node_harness, node, test_id, EVENTS))


async def test_connections_closed_by_the_broker_lose_none(
    node_harness: WorkerHarness, node: RabbitNode, test_id: str
) -> None:
    tally = await faults.close_connection(node_harness, node, test_id, EVENTS)
    assert_nothing_lost(tally, in_flight=3 * PREFETCH)  # three connections lost


@pytest.mark.parametrize("kind", ["memory", "disk"])
async def test_resource_alarm_during_load_loses_none(
    node_harness: WorkerHarness, node: RabbitNode, test_id: str, kind: str
) -> None:
    assert_nothing_lost(await faults.alarm(node_harness, node, test_id, EVENTS, kind))


async def test_a_cluster_loses_the_request_queue_leader_then_the_delay_leader(
    cluster: list[RabbitNode], settings: Settings, flaky_api: FlakyApi, test_id: str
) -> None:
    tally = await faults.cluster_leaders(cluster, settings, flaky_api, test_id, CLUSTER_EVENTS)
    assert_nothing_lost(tally, in_flight=2 * faults.CLUSTER_PREFETCH)
