"""Broker faults under load, counted: what was sent, answered, lost and duplicated.

Used by tests/integration/broker/test_broker_faults.py (a few thousand events per
fault) and by benchmarks/faults.py (10,000). Workers run as processes
(``python -m actionrelay run``) so that the test's own event loop never slows
them; the fault itself is a ``rabbitmqctl`` call or a signal to a private node
(tests/integration/nodes.py).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import aiohttp
import aiormq
import orjson

from actionrelay.broker.connection import CONNECTION_ERRORS
from actionrelay.broker.topology import Topology
from actionrelay.core.delay import LEVELS
from actionrelay.limits.endpoint import load_endpoints
from actionrelay.settings import Settings
from tests.integration.nodes import RabbitNode, free_port
from tests.integration.support import Received, RecordingApi, Reply, WorkerHarness

RECONNECT_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    aiormq.exceptions.AMQPError,
    OSError,
)
# The reproduction of issue 12: a 0.3 s wait, many attempts.
RETRY = {"max_attempts": 12, "schedule_seconds": [0.3], "jitter": 0}
PREFETCH = 256
THROTTLE_PER_SECOND = 400  # per worker (no Redis): events wait in the holding queue too
# The cluster scenario: 2 replicas x 50 calls of 0.25 s, at most 400 calls/s, so
# that the load lasts through both node stops.
CLUSTER_PREFETCH = 50
CLUSTER_API_SECONDS = 0.25


class FlakyApi(RecordingApi):
    """Answers 503 to ``failure_rate`` of calls (seeded), else 200 after ``delay`` seconds."""

    def __init__(self, failure_rate: float = 0.3, delay: float = 0.005, seed: int = 7) -> None:
        super().__init__()
        self.failure_rate = failure_rate
        self.delay = delay
        self.rng = random.Random(seed)

    def reply_for(self, received: Received) -> Reply:
        if self.rng.random() < self.failure_rate:
            return Reply(503, delay=self.delay)
        return Reply(200, delay=self.delay)


@dataclass
class Tally:
    """One fault's outcome, as docs/reliability.md reports it."""

    fault: str
    sent: int
    answered: int = 0
    results: int = 0
    calls: int = 0
    lost: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    longest_pause_seconds: float = 0.0
    dead_letters: int = 0
    at_fault: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.results - self.answered

    def line(self) -> str:
        return (
            f"{self.fault}: sent {self.sent}, answered {self.answered}, lost {len(self.lost)}, "
            f"duplicate results {self.duplicates}, calls {self.calls}, "
            f"dead letters {self.dead_letters}, longest pause in results "
            f"{self.longest_pause_seconds:.1f} s, statuses {dict(self.statuses)}, "
            f"at the fault {self.at_fault}"
        )


async def publish_events(
    harness: WorkerHarness, ids: Sequence[str], action: str, reply_to: str
) -> None:
    """Persistent, confirmed, in batches of 200 in flight."""
    await harness.declare()
    batch: list[Awaitable[Any]] = []
    for event_id in ids:
        body = orjson.dumps({"event_id": event_id, "action": action, "params": {"id": event_id}})
        message = aio_pika.Message(
            body, reply_to=reply_to, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        batch.append(
            harness.channel.default_exchange.publish(
                message, routing_key=harness.settings.request_queue
            )
        )
        if len(batch) >= 200:
            await asyncio.gather(*batch)
            batch.clear()
    await asyncio.gather(*batch)


async def declare_reply_queue(channel: aio_pika.abc.AbstractChannel, name: str) -> str:
    """A durable quorum queue: it outlives a broker restart and a node's loss."""
    await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    return name


async def collect_answers(
    urls: Sequence[str],
    queue: str,
    tally: Tally,
    ids: Sequence[str],
    *,
    timeout: float,
    settle_seconds: float = 2.0,
) -> None:
    """Read results until every id is answered (or ``timeout``), then stragglers.

    A connection of its own, to whichever node answers: the test's robust
    connection may still be waiting out its reconnect interval.
    """
    expected = set(ids)
    seen: Counter[str] = Counter()
    completed: list[datetime] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    while True:
        now = time.monotonic()
        if now > deadline or (quiet_until is not None and now > quiet_until):
            break
        try:
            got = await _drain_once(urls, queue, seen, completed, tally.statuses)
        except RECONNECT_ERRORS:
            await asyncio.sleep(0.5)
            continue
        if quiet_until is None and expected <= set(seen):
            quiet_until = time.monotonic() + settle_seconds
        if not got:
            await asyncio.sleep(0.2)
    tally.answered = len(set(seen) & expected)
    tally.results = sum(seen.values())
    tally.lost = sorted(expected - set(seen))
    tally.longest_pause_seconds = longest_pause(completed)


async def _drain_once(
    urls: Sequence[str],
    queue: str,
    seen: Counter[str],
    completed: list[datetime],
    statuses: Counter[str],
) -> int:
    """Every result ready now on ``queue`` (acked), from the first node that answers."""
    connection = await _connect_any(urls)
    got = 0
    try:
        channel = await connection.channel()
        ready = await channel.declare_queue(queue, passive=True)
        while (message := await ready.get(no_ack=True, fail=False)) is not None:
            result = orjson.loads(message.body)
            seen[result["event_id"]] += 1
            statuses[result["status"]] += 1
            completed.append(datetime.fromisoformat(result["completed_at"]))
            got += 1
    finally:
        await connection.close()
    return got


async def _connect_any(urls: Sequence[str]) -> aio_pika.abc.AbstractConnection:
    error: BaseException | None = None
    for url in urls:
        try:
            return await aio_pika.connect(url, timeout=5)
        except RECONNECT_ERRORS as exc:
            error = exc
    raise ConnectionError(f"no node answers: {error}")


def longest_pause(completed: list[datetime]) -> float:
    """The longest gap between two consecutive results, in seconds."""
    ordered = sorted(completed)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    return max(gaps, default=0.0)


async def wait_for_calls(api: RecordingApi, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(api.received) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(api.received)} of {count} calls made")
        await asyncio.sleep(0.02)


async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    """rabbitmqctl and signals block: keep the test's loop (and its API) running."""
    return await asyncio.to_thread(call, *args)


async def wait_readiness(port: int, status: int, timeout: float = 30.0) -> None:
    """Until the worker's /readyz answers ``status``."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == status:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"/readyz did not answer {status}")
            await asyncio.sleep(0.1)


def define_action(harness: WorkerHarness, per_second: int | None = THROTTLE_PER_SECOND) -> None:
    """Issue 12's reproduction (12 attempts, 0.3 s apart); with ``per_second`` its
    endpoint is throttled, so that events also wait in a holding queue."""
    harness.action({"name": "notify", "body": {"id": {"$var": "id"}}, "retry": RETRY})
    if per_second is not None:
        endpoint = f"- url: {harness.api.url}/*\n  throttling: {{max_per_second: {per_second}}}\n"
        (harness.settings.actions_dir / "endpoints.yaml").write_text(endpoint)


async def where_events_are(harness: WorkerHarness) -> dict[str, int]:
    """Messages ready now in the request queue, the holding queue and the delay ladder
    (AMQP counts: ``rabbitmqctl list_queues`` lags by seconds for quorum queues)."""
    settings = harness.settings
    topology = Topology(settings)
    holding = [topology.holding_queue_name(e) for e in load_endpoints(settings.actions_dir).entries]
    ladder = [topology.ladder.level_name(level) for level in range(LEVELS)]
    return {
        "request queue": await harness.depth(settings.request_queue),
        "holding": sum([await harness.depth(name) for name in holding]),
        "delay ladder": sum([await harness.depth(name) for name in ladder]),
    }


async def load(harness: WorkerHarness, run_id: str, count: int) -> tuple[list[str], str]:
    """``count`` events with a durable reply queue."""
    reply_to = await declare_reply_queue(harness.channel, f"t.{run_id}.replies")
    ids = [f"e-{n}" for n in range(count)]
    await publish_events(harness, ids, "notify", reply_to)
    return ids, reply_to


async def answered(
    harness: WorkerHarness,
    urls: list[str],
    reply_to: str,
    ids: list[str],
    fault: str,
    at_fault: dict[str, int],
) -> Tally:
    tally = Tally(fault, sent=len(ids), at_fault=at_fault)
    await collect_answers(urls, reply_to, tally, ids, timeout=60 + len(ids) / 50)
    tally.calls = len(harness.api.received)
    tally.dead_letters = await harness.depth(harness.settings.dead_letter_queue)
    return tally


async def started(harness: WorkerHarness, **overrides: Any) -> None:
    await harness.spawn_worker(prefetch=PREFETCH, **overrides)
    await harness.wait_consuming(1)


async def stop_app(harness: WorkerHarness, node: RabbitNode, run_id: str, count: int) -> Tally:
    """Issue 12's reproduction, not throttled so that many events are in the delay
    ladder: ``stop_app``, 3 s, ``start_app`` mid-load; /readyz says 503 meanwhile."""
    define_action(harness, per_second=None)
    port = free_port()
    await started(harness, http_port=port, http_host="127.0.0.1")
    ids, reply_to = await load(harness, run_id, count)
    await wait_for_calls(harness.api, count // 5, timeout=30)
    at_fault = await where_events_are(harness)
    await in_thread(node.stop_app)
    await wait_readiness(port, 503)
    await asyncio.sleep(3)
    await in_thread(node.start_app)
    await wait_readiness(port, 200)
    return await answered(harness, [node.url], reply_to, ids, "stop_app, 3 s, start_app", at_fault)


async def kill(harness: WorkerHarness, node: RabbitNode, run_id: str, count: int) -> Tally:
    """The broker's VM killed with SIGKILL mid-load, then started again."""
    define_action(harness)
    await started(harness)
    ids, reply_to = await load(harness, run_id, count)
    await wait_for_calls(harness.api, count // 5, timeout=30)
    at_fault = await where_events_are(harness)
    await in_thread(node.kill)
    await in_thread(node.start)
    return await answered(harness, [node.url], reply_to, ids, "SIGKILL, start", at_fault)


async def close_connection(
    harness: WorkerHarness, node: RabbitNode, run_id: str, count: int
) -> Tally:
    """The worker's connection closed by the broker three times mid-load."""
    worker_id = f"w-{run_id}"
    define_action(harness)
    await started(harness, worker_id=worker_id)
    ids, reply_to = await load(harness, run_id, count)
    at_fault: dict[str, int] = {}
    for share in (0.2, 0.5, 0.8):
        await wait_for_calls(harness.api, int(count * share), timeout=30)
        await wait_connected(node, f"actionrelay worker {worker_id}")
        at_fault = at_fault or await where_events_are(harness)
        closed = await in_thread(node.close_connections, f"actionrelay worker {worker_id}")
        assert closed == 1, f"{closed} worker connections closed"
    return await answered(harness, [node.url], reply_to, ids, "close_connection x3", at_fault)


ALARMS = {
    "memory": (
        ["set_vm_memory_high_watermark", "0.0000001"],
        ["set_vm_memory_high_watermark", "0.4"],
    ),
    "disk": (["set_disk_free_limit", "100000GB"], ["set_disk_free_limit", "50MB"]),
}


async def alarm(
    harness: WorkerHarness, node: RabbitNode, run_id: str, count: int, kind: str
) -> Tally:
    """A memory or disk alarm raised for 3 s mid-load, then cleared."""
    raise_it, clear_it = ALARMS[kind]
    define_action(harness)
    await started(harness)
    ids, reply_to = await load(harness, run_id, count)
    await wait_for_calls(harness.api, count // 5, timeout=30)
    at_fault = await where_events_are(harness)
    try:
        await in_thread(node.ctl, *raise_it)
        await in_thread(node.wait_alarm, kind)
        await asyncio.sleep(3)
    finally:
        await in_thread(node.ctl, *clear_it)
    return await answered(harness, [node.url], reply_to, ids, f"{kind} alarm, 3 s", at_fault)


async def cluster_leaders(
    cluster: list[RabbitNode], settings: Settings, api: FlakyApi, run_id: str, count: int
) -> Tally:
    """Two replicas given every node's URL; the node leading the request queue stops
    mid-load and comes back, then the node leading the delay ladder does."""
    n1, n2, n3 = cluster
    settings = settings.model_copy(update={"amqp_url": ",".join(n.url for n in cluster)})
    # Leaders go to the declaring connection's node: the ladder on n2, the request
    # queue on n1; the run itself talks to n3, which never stops.
    await declare_on(n2, settings, ladder_only=True)
    await declare_on(n1, settings, ladder_only=False)
    connection = await aio_pika.connect_robust(n3.url, reconnect_interval=0.5)
    harness = WorkerHarness(settings, await connection.channel(), api)
    api.delay = CLUSTER_API_SECONDS
    try:
        define_action(harness)
        names = [f"{run_id}-{replica}" for replica in "ab"]
        for name in names:
            await harness.spawn_worker(prefetch=CLUSTER_PREFETCH, worker_id=name)
        await harness.wait_consuming(2)
        on_n1 = await replica_on(n1, cluster, [f"actionrelay worker {name}" for name in names])
        ids, reply_to = await load(harness, run_id, count)
        leaders = (leader_of(n3, settings.request_queue), leader_of(n3, ladder_queue(settings)))
        assert leaders == (n1.name, n2.name), leaders
        await wait_for_calls(api, count // 10, timeout=30)
        at_fault = await where_events_are(harness)
        for node in (n1, n2):
            assert await harness.depth(reply_to) < count, "the load ended before the fault"
            await in_thread(node.stop_app)
            await asyncio.sleep(3)
            if node is n1:  # the replica that was on n1 went on to the next node
                [port] = await in_thread(n3.connected_ports, on_n1)
                assert port != n1.port
            await in_thread(node.start_app)
        fault = "cluster: request queue's leader, then the ladder's, stopped 3 s"
        return await answered(harness, [n3.url], reply_to, ids, fault, at_fault)
    finally:
        await harness.close()
        await connection.close()


def ladder_queue(settings: Settings) -> str:
    return Topology(settings).ladder.level_name(0)


async def declare_on(node: RabbitNode, settings: Settings, *, ladder_only: bool) -> None:
    connection = await aio_pika.connect(node.url)
    try:
        channel = await connection.channel()
        topology = Topology(settings)
        await (topology.declare_ladder(channel) if ladder_only else topology.declare(channel))
    finally:
        await connection.close()


async def replica_on(target: RabbitNode, cluster: list[RabbitNode], names: list[str]) -> str:
    """The connection name of a replica on ``target``: closing a replica's connection
    moves it to the next URL of its list, so at most two closes put one there."""
    for _ in range(len(cluster)):
        for name in names:
            if await in_thread(target.connected_ports, name) == [target.port]:
                return name
        [port] = await in_thread(target.connected_ports, names[0])
        [node] = [n for n in cluster if n.port == port]
        await in_thread(node.close_connections, names[0])
        await wait_connected(target, names[0])
    raise AssertionError(f"no replica reached {target.name}")


async def wait_connected(node: RabbitNode, name: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await in_thread(node.connected_ports, name):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not connect again")
        await asyncio.sleep(0.2)


def leader_of(node: RabbitNode, queue: str) -> str:
    [record] = [q for q in node.queues("name", "leader") if q["name"] == queue]
    return str(record["leader"])
